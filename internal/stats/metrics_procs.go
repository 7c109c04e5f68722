package stats

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ReadProcs counts the file descriptors, sockets and threads of the
// processes pids under procRoot (/proc). A process that exits meanwhile
// is skipped.
func ReadProcs(procRoot string, pids []int) Procs {
	var p Procs
	for _, pid := range pids {
		dir := filepath.Join(procRoot, strconv.Itoa(pid))
		if n, ok := threadsOf(filepath.Join(dir, "status")); ok {
			p.Threads += n
		}
		fdDir := filepath.Join(dir, "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		p.FileDescriptors += uint64(len(fds))
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && strings.HasPrefix(target, "socket:") {
				p.Sockets++
			}
		}
	}
	return p
}

// threadsOf reads the Threads: line of a /proc/<pid>/status.
func threadsOf(path string) (uint64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Threads:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// ReadUlimits reads the resource limits of a process from
// /proc/<pid>/limits.
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
