package stats

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// ReadProcs counts the file descriptors, sockets and threads of the
// processes pids under procRoot (/proc). A process that exits meanwhile
// is skipped.
func ReadProcs(procRoot string, pids []int) Procs {
	var p Procs
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return p
	}
	for _, pid := range pids {
		proc, err := fs.Proc(pid)
		if err != nil {
			continue
		}
		if st, err := proc.Stat(); err == nil {
			p.Threads += uint64(st.NumThreads)
		}
		targets, err := proc.FileDescriptorTargets()
		if err != nil {
			continue
		}
		p.FileDescriptors += uint64(len(targets))
		for _, t := range targets {
			if strings.HasPrefix(t, "socket:") {
				p.Sockets++
			}
		}
	}
	return p
}

// ReadUlimits reads the resource limits of a process from
// /proc/<pid>/limits. procfs's Limits has the soft limits only; the
// metrics report both.
func ReadUlimits(pid int) ([]Ulimit, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "limits"))
	if err != nil {
		return nil, err
	}
	return ParseLimits(string(data))
}

// ParseLimits parses a /proc/<pid>/limits file: a header, then a line per
// limit with its name, soft and hard values and unit in columns that the
// header places. Names become cadvisor's: "Max open files" is
// "max_open_files". "unlimited" is RLIM_INFINITY.
func ParseLimits(data string) ([]Ulimit, error) {
	lines := strings.Split(data, "\n")
	soft := strings.Index(lines[0], "Soft Limit")
	if soft <= 0 {
		return nil, fmt.Errorf("limits: no header in %q", lines[0])
	}
	var out []Ulimit
	for _, line := range lines[1:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if len(line) <= soft {
			return nil, fmt.Errorf("limits: short line %q", line)
		}
		name := strings.TrimSpace(line[:soft])
		f := strings.Fields(line[soft:])
		if name == "" || len(f) < 2 {
			return nil, fmt.Errorf("limits: malformed line %q", line)
		}
		s, err := limitValue(f[0])
		if err != nil {
			return nil, fmt.Errorf("limits: %q: %w", line, err)
		}
		h, err := limitValue(f[1])
		if err != nil {
			return nil, fmt.Errorf("limits: %q: %w", line, err)
		}
		out = append(out, Ulimit{Name: strings.ToLower(strings.Join(strings.Fields(name), "_")), Soft: s, Hard: h})
	}
	return out, nil
}

func limitValue(s string) (uint64, error) {
	if s == "unlimited" {
		return math.MaxUint64, nil
	}
	return strconv.ParseUint(s, 10, 64)
}
