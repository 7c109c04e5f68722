package bench

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseSmapsRollup(t *testing.T) {
	const text = `55d0c0a4b000-7ffd8b5f6000 ---p 00000000 00:00 0                          [rollup]
Rss:               21324 kB
Pss:                9577 kB
Pss_Anon:           4788 kB
Shared_Clean:      12796 kB
Swap:                  0 kB
`
	m, err := ParseSmapsRollup(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Mem{RSS: 21324 * 1024, PSS: 9577 * 1024}); m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	if _, err := ParseSmapsRollup(strings.NewReader("Swap: 0 kB\n")); err == nil {
		t.Error("no error for a rollup without Rss and Pss")
	}
	if _, err := ParseSmapsRollup(strings.NewReader("Rss: x kB\nPss: 1 kB\n")); err == nil {
		t.Error("no error for a bad number")
	}
}

func TestParseStatPPID(t *testing.T) {
	for stat, want := range map[string]int{
		"1234 (conmon) S 1 1233 1233 0 -1 4194624 1 0":          1,
		"77 (a) b (c)) R 42 77 77 0 -1 4194560 104 0 0 0 0 0 0": 42,
		"9 (containerd-shim) S 501 9 9":                         501,
	} {
		got, err := ParseStatPPID(stat)
		if err != nil || got != want {
			t.Errorf("ParseStatPPID(%q) = %d, %v; want %d", stat, got, err, want)
		}
	}
	for _, bad := range []string{"", "12 comm S", "12 (x) S"} {
		if _, err := ParseStatPPID(bad); err == nil {
			t.Errorf("ParseStatPPID(%q): no error", bad)
		}
	}
}

func TestCgroups(t *testing.T) {
	v1 := "12:pids:/cradle-bench/cradle/pid-pod/podab/c1\n11:memory:/cradle-bench/cradle/pid-pod/podab/c1\n1:name=systemd:/\n"
	got := ParseCgroups(v1)
	want := []string{"/cradle-bench/cradle/pid-pod/podab/c1", "/cradle-bench/cradle/pid-pod/podab/c1", "/"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseCgroups = %q, want %q", got, want)
	}
	if got := ParseCgroups("0::/system.slice/x.service\n"); !reflect.DeepEqual(got, []string{"/system.slice/x.service"}) {
		t.Errorf("ParseCgroups v2 = %q", got)
	}
	for _, tc := range []struct {
		paths []string
		root  string
		want  bool
	}{
		{[]string{"/", "/system.slice/x.service"}, "/system.slice", true},
		{[]string{"/cradle-bench/cradle/pid-pod/podab/c1"}, "/cradle-bench/cradle/", true},
		{[]string{"/cradle-bench/cradle"}, "/cradle-bench/cradle", true},
		{[]string{"/cradle-bench/cradle2/x"}, "/cradle-bench/cradle", false},
		{[]string{"/"}, "/cradle-bench", false},
	} {
		if InCgroupTree(tc.paths, tc.root) != tc.want {
			t.Errorf("InCgroupTree(%q, %q) != %v", tc.paths, tc.root, tc.want)
		}
	}
}

func TestParseUnixSocketInodes(t *testing.T) {
	const text = `Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 31337 /run/cradle-bench/cradle/cradle.sock
0000000000000000: 00000003 00000000 00000000 0001 03 31338 /run/cradle-bench/cradle/cradle.sock
0000000000000000: 00000003 00000000 00000000 0001 03 31339
0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/other.sock
`
	got := ParseUnixSocketInodes(text, "/run/cradle-bench/cradle/cradle.sock")
	if !reflect.DeepEqual(got, []string{"31337", "31338"}) {
		t.Errorf("got %q", got)
	}
	if got := ParseUnixSocketInodes(text, "/run/none.sock"); got != nil {
		t.Errorf("got %q for an unbound path", got)
	}
}

// TestProcFS reads a fake /proc tree.
func TestProcFS(t *testing.T) {
	root := t.TempDir()
	write := func(pid int, name, text string) {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(10, "stat", "10 (conmon) S 1 10 10 0")
	write(10, "comm", "conmon\n")
	write(10, "cmdline", "/usr/bin/conmon\x00-c\x00abc\x00")
	write(10, "cgroup", "1:memory:/cradle\n")
	write(10, "smaps_rollup", "Rss: 2000 kB\nPss: 1000 kB\n")
	write(11, "stat", "11 (sleep) S 10 11 11 0")
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	fs := procFS{root: root}
	p, err := fs.proc(10, true)
	if err != nil {
		t.Fatal(err)
	}
	want := Proc{PID: 10, PPID: 1, Comm: "conmon", Cmdline: []string{"/usr/bin/conmon", "-c", "abc"},
		Cgroups: []string{"/cradle"}, Mem: Mem{RSS: 2000 << 10, PSS: 1000 << 10}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("proc = %+v, want %+v", p, want)
	}
	all, err := fs.all()
	if err != nil || len(all) != 2 || all[1].PPID != 10 {
		t.Errorf("all = %+v, %v", all, err)
	}
	if _, err := fs.mem(11); err == nil {
		t.Error("mem of a process without smaps_rollup: no error")
	}
}

// TestSocketOwner starts this test binary as a child that listens on a
// unix socket and expects SocketOwner to find the child.
func TestSocketOwner(t *testing.T) {
	if _, err := os.Stat("/proc/net/unix"); err != nil {
		t.Skip("no /proc/net/unix")
	}
	sock := filepath.Join(t.TempDir(), "s.sock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSocketOwnerHelper$")
	cmd.Env = append(os.Environ(), "BENCH_HELPER_SOCKET="+sock)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 500 {
			t.Fatal("helper did not listen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	pid, err := hostProc.SocketOwner(sock)
	if err != nil || pid != cmd.Process.Pid {
		t.Errorf("SocketOwner = %d, %v; want %d", pid, err, cmd.Process.Pid)
	}
	if _, err := hostProc.SocketOwner(sock + ".none"); err == nil {
		t.Error("no error for an unbound path")
	}
}

// TestSocketOwnerHelper is the child of TestSocketOwner: it listens until
// its stdin closes.
func TestSocketOwnerHelper(t *testing.T) {
	sock := os.Getenv("BENCH_HELPER_SOCKET")
	if sock == "" {
		t.Skip("helper process only")
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, _ = io.Copy(io.Discard, os.Stdin)
}
