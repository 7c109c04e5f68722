package stats

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs2"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// busyIn creates the cgroup dirs, moves a shell into them and lets it work
// and fork two sleeps. The shell works only once moved: charges made
// before would stay behind.
func busyIn(t *testing.T, dirs []string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", "read go; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; sleep 30 & sleep 30")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Kill the background sleep too, or the cgroups stay busy.
		if pids, err := cgroups.GetPids(dirs[0]); err == nil {
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		for _, d := range dirs {
			for i := 0; i < 50 && os.Remove(d) != nil && cgroups.PathExists(d); i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := cgroups.WriteCgroupProc(d, cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
}

// waitProcs reads until the shell and both sleeps are in the cgroup and
// ready accepts the reading. The kernel flushes memcg statistics
// (memory.stat) on its own schedule, up to about two seconds late, so a
// counter read right after the processes start may still be zero.
func waitProcs(t *testing.T, read func() (*Cgroup, error), ready func(*Cgroup) bool) *Cgroup {
	t.Helper()
	var cg *Cgroup
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cg, err = read(); err != nil {
			t.Fatal(err)
		}
		if cg.Processes >= 3 && ready(cg) {
			break
		}
	}
	return cg
}

// TestReadCgroup reads a fresh cgroup in the host's own mode.
func TestReadCgroup(t *testing.T) {
	requireRoot(t)
	path := fmt.Sprintf("/cradle-stats-test-%d", os.Getpid())
	var dirs []string
	if cgroups.IsCgroup2UnifiedMode() {
		dirs = []string{filepath.Join(fs2.UnifiedMountpoint, path)}
	} else {
		mounts, err := v1Mounts()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, sub := range []string{"memory", "cpu", "cpuacct", "pids", "blkio"} {
			if mnt, ok := mounts[sub]; ok && !seen[mnt] {
				seen[mnt] = true
				dirs = append(dirs, filepath.Join(mnt, path))
			}
		}
	}
	busyIn(t, dirs)
	cg := waitProcs(t, func() (*Cgroup, error) { return ReadCgroup(path) },
		func(cg *Cgroup) bool { return cg.Memory.LocalPageFaults > 0 })
	if cg.Processes < 3 || cg.Memory.Usage == 0 || cg.CPU == 0 || cg.Memory.WorkingSet == 0 {
		t.Errorf("reading = %+v", cg)
	}
	// The shell and two sleeps: a thread each, stdin and the standard
	// descriptors open.
	if p := cg.Procs; p == nil || p.Threads < 3 || p.FileDescriptors < 3 {
		t.Errorf("processes = %+v", cg.Procs)
	}
	if sp := cg.Spec; sp == nil || sp.CPUShares == 0 || sp.CPUPeriod == 0 || sp.CPUQuota != 0 {
		t.Errorf("spec of an unconfigured cgroup = %+v", cg.Spec)
	}
	m := cg.Memory
	if !m.HasOOMKills || m.OOMKills != 0 || m.LocalPageFaults == 0 || (m.HasMaxUsage && m.MaxUsage < m.Usage) {
		t.Errorf("memory = %+v", m)
	}
	if !cg.HasPidsLimit || cg.PidsLimit != 0 {
		t.Errorf("pids limit = %d, %v; want unlimited", cg.PidsLimit, cg.HasPidsLimit)
	}
	if _, err := ReadCgroup(path + "-missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing cgroup: %v, want ErrNotExist", err)
	}
}

// TestReadCgroupV2Tree covers the v2 reader on a hybrid host, whose v2
// tree has no controllers: CPU comes from cpu.stat and the process count
// from cgroup.procs.
func TestReadCgroupV2Tree(t *testing.T) {
	requireRoot(t)
	if !cgroups.IsCgroup2HybridMode() {
		t.Skip("no controller-less cgroup v2 tree on this host (the v1 or v2 test covers it)")
	}
	dir := filepath.Join(fs2.UnifiedMountpoint, "unified", fmt.Sprintf("cradle-stats-test-v2-%d", os.Getpid()))
	if !cgroups.PathExists(filepath.Join(fs2.UnifiedMountpoint, "unified", "cgroup.procs")) {
		t.Skip("cgroup v2 is not at /sys/fs/cgroup/unified")
	}
	busyIn(t, []string{dir})
	cg := waitProcs(t, func() (*Cgroup, error) { return readV2(dir) },
		func(*Cgroup) bool { return true })
	if cg.Processes < 3 || cg.CPU == 0 {
		t.Errorf("reading = %+v", cg)
	}
}

func TestReadNetNS(t *testing.T) {
	requireRoot(t)
	ifaces, err := ReadNetNS("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifaces {
		if i.Name == "lo" {
			t.Error("loopback must be left out")
		}
	}
	if _, err := ReadNetNS("/nonexistent"); err == nil {
		t.Error("a missing namespace must fail")
	}
}
