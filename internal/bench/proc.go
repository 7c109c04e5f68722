package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Mem is a process's memory from /proc/PID/smaps_rollup, in bytes.
type Mem struct {
	RSS int64 `json:"rss_bytes"`
	PSS int64 `json:"pss_bytes"`
}

// Add returns the sum of m and o.
func (m Mem) Add(o Mem) Mem { return Mem{RSS: m.RSS + o.RSS, PSS: m.PSS + o.PSS} }

// Proc is one process as the memory snapshot sees it.
type Proc struct {
	PID     int      `json:"pid"`
	PPID    int      `json:"ppid"`
	Comm    string   `json:"comm"`
	Cmdline []string `json:"cmdline,omitempty"`
	Cgroups []string `json:"-"` // one path per hierarchy line of /proc/PID/cgroup
	Mem     Mem      `json:"mem"`
}

// procFS reads process information below a /proc mount; tests point it at
// a fake tree.
type procFS struct{ root string }

var hostProc = procFS{root: "/proc"}

// ParseSmapsRollup reads the Rss and Pss lines (in kB) of smaps_rollup.
func ParseSmapsRollup(r io.Reader) (Mem, error) {
	var m Mem
	var seen int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[2] != "kB" {
			continue
		}
		var dst *int64
		switch f[0] {
		case "Rss:":
			dst = &m.RSS
		case "Pss:":
			dst = &m.PSS
		default:
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return Mem{}, fmt.Errorf("smaps_rollup %s: %w", f[0], err)
		}
		*dst = v * 1024
		seen++
	}
	if err := sc.Err(); err != nil {
		return Mem{}, fmt.Errorf("read smaps_rollup: %w", err)
	}
	if seen < 2 {
		return Mem{}, errors.New("smaps_rollup has no Rss and Pss lines")
	}
	return m, nil
}

// ParseStatPPID returns the parent PID from the text of /proc/PID/stat. The
// command name may hold spaces and parentheses, so fields count from the
// last ')'.
func ParseStatPPID(stat string) (int, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, errors.New("stat: too few fields")
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, fmt.Errorf("stat ppid: %w", err)
	}
	return ppid, nil
}

// ParseCgroups returns the cgroup path of each line of /proc/PID/cgroup
// ("ID:controllers:path"), v1 and v2 alike.
func ParseCgroups(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) == 3 && parts[2] != "" {
			out = append(out, parts[2])
		}
	}
	return out
}

// InCgroupTree reports whether any of the process's cgroup paths is root or
// below it.
func InCgroupTree(paths []string, root string) bool {
	root = strings.TrimSuffix(root, "/")
	for _, p := range paths {
		if p == root || strings.HasPrefix(p, root+"/") {
			return true
		}
	}
	return false
}

// mem reads one process's smaps_rollup.
func (p procFS) mem(pid int) (Mem, error) {
	f, err := os.Open(filepath.Join(p.root, strconv.Itoa(pid), "smaps_rollup"))
	if err != nil {
		return Mem{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	defer f.Close()
	m, err := ParseSmapsRollup(f)
	if err != nil {
		return Mem{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	return m, nil
}

// proc reads a process's identity; withMem adds its memory.
func (p procFS) proc(pid int, withMem bool) (Proc, error) {
	dir := filepath.Join(p.root, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return Proc{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	out := Proc{PID: pid}
	if out.PPID, err = ParseStatPPID(string(stat)); err != nil {
		return Proc{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil {
		out.Comm = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		out.Cmdline = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
		out.Cgroups = ParseCgroups(string(b))
	}
	if withMem {
		if out.Mem, err = p.mem(pid); err != nil {
			return Proc{}, err
		}
	}
	return out, nil
}

// pids lists the numeric entries of /proc.
func (p procFS) pids() ([]int, error) {
	ents, err := os.ReadDir(p.root)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", p.root, err)
	}
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// all reads every process without its memory; processes that exit while
// being read are skipped.
func (p procFS) all() ([]Proc, error) {
	pids, err := p.pids()
	if err != nil {
		return nil, err
	}
	out := make([]Proc, 0, len(pids))
	for _, pid := range pids {
		if pr, err := p.proc(pid, false); err == nil {
			out = append(out, pr)
		}
	}
	return out, nil
}

// ParseUnixSocketInodes returns the inodes of the sockets bound to path in
// the text of /proc/net/unix: the listener and the daemon's accepted ends.
func ParseUnixSocketInodes(text, path string) []string {
	var out []string
	for i, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		// Num RefCount Protocol Flags Type St Inode Path
		if i == 0 || len(f) < 8 || f[7] != path {
			continue
		}
		out = append(out, f[6])
	}
	return out
}

// SocketOwner finds the process that holds the unix socket bound to path:
// for a CRI endpoint, the daemon. The caller's own process is skipped.
func (p procFS) SocketOwner(path string) (int, error) {
	b, err := os.ReadFile(filepath.Join(p.root, "net", "unix"))
	if err != nil {
		return 0, fmt.Errorf("read unix sockets: %w", err)
	}
	inodes := ParseUnixSocketInodes(string(b), path)
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no socket bound to %s", path)
	}
	want := make(map[string]bool, len(inodes))
	for _, ino := range inodes {
		want["socket:["+ino+"]"] = true
	}
	pids, err := p.pids()
	if err != nil {
		return 0, err
	}
	self := os.Getpid()
	for _, pid := range pids {
		if pid == self {
			continue
		}
		fdDir := filepath.Join(p.root, strconv.Itoa(pid), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && want[l] {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no process holds the socket %s", path)
}
