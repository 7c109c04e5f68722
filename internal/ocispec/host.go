package ocispec

import (
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/selinux/go-selinux"
	"github.com/opencontainers/selinux/go-selinux/label"
)

// What the spec builder asks of the host. They are variables so that the
// unit tests can describe a host of their own.
var (
	// hostMounts lists the host's mounts, for the propagation checks.
	hostMounts = func() ([]*mountinfo.Info, error) { return mountinfo.GetMounts(nil) }
	// hostAppArmor reports whether the host enforces AppArmor.
	hostAppArmor = AppArmorEnabled
	// hostSELinux reports whether SELinux is enabled.
	hostSELinux = selinux.GetEnabled
	// selinuxInitLabels turns selinux options into process and mount labels.
	selinuxInitLabels = label.InitLabels
	// hostDevices lists the host's devices, for privileged containers.
	hostDevices = func() ([]specs.LinuxDevice, error) { return devicesUnder("/dev", "/dev", true) }
	// hostSwap reports whether the memory cgroup can limit swap: a boot
	// setting, so read once like the controllers.
	hostSwap = sync.OnceValue(swapAccounting)
	// hostControllers lists the cgroup controllers the host has mounted:
	// read once, not on every container create and update.
	hostControllers = sync.OnceValue(cgroupControllers)
	// hostCgroup2 reports whether the host runs the unified cgroup hierarchy.
	hostCgroup2 = func() bool {
		_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
		return err == nil
	}
)

// AppArmorEnabled reports whether the host enforces AppArmor.
func AppArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(b), "Y")
}

// swapAccounting reports whether swap can be limited: memsw on cgroup v1,
// memory.swap.max in the non-root cgroups of v2.
func swapAccounting() bool {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
		return true
	}
	m, _ := filepath.Glob("/sys/fs/cgroup/*/memory.swap.max")
	return len(m) > 0
}

// cgroupControllers lists the cgroup controllers that can be used: the
// mounted v1 hierarchies, or the v2 root's controllers. A controller the
// kernel knows but nobody mounted (hugetlb on this kind of hybrid host)
// is not there.
func cgroupControllers() map[string]bool {
	mounts, err := cgroups.GetCgroupMounts(false)
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, m := range mounts {
		for _, s := range m.Subsystems {
			out[s] = true
		}
	}
	return out
}
