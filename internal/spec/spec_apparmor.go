package spec

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/opencontainers/runtime-tools/generate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultAppArmorProfile is the profile RuntimeDefault means; PrepareHost
// loads it when a spec uses it.
const DefaultAppArmorProfile = "cradle-default"

// apparmorProfile is what the config asks for; asked is false when it
// names no profile.
func apparmorProfile(in *ContainerInput) (p securityProfile, asked bool, err error) {
	sc := in.Config.GetLinux().GetSecurityContext()
	if a := sc.GetApparmor(); a != nil {
		return securityProfile{a.GetProfileType(), a.GetLocalhostRef(), "linux.security_context.apparmor"}, true, nil
	}
	s := sc.GetApparmorProfile()
	const field = "linux.security_context.apparmor_profile"
	switch {
	case s == "":
		return securityProfile{typ: runtimeapi.SecurityProfile_RuntimeDefault, field: field}, false, nil
	case s == "runtime/default":
		return securityProfile{typ: runtimeapi.SecurityProfile_RuntimeDefault, field: field}, true, nil
	case s == "unconfined":
		return securityProfile{typ: runtimeapi.SecurityProfile_Unconfined, field: field}, true, nil
	case strings.HasPrefix(s, "localhost/"):
		return securityProfile{runtimeapi.SecurityProfile_Localhost, strings.TrimPrefix(s, "localhost/"), field}, true, nil
	}
	return p, false, fieldErr(field, "unknown AppArmor profile %q: want runtime/default, unconfined or localhost/<name>", s)
}

// setAppArmor applies the profile when the host has AppArmor. Without it,
// a profile other than unconfined is refused, but asking nothing is fine.
func setAppArmor(g *generate.Generator, in *ContainerInput) error {
	p, asked, err := apparmorProfile(in)
	if err != nil {
		return err
	}
	if p.typ == runtimeapi.SecurityProfile_Unconfined {
		return nil
	}
	if !hostAppArmor() {
		if !asked {
			return nil
		}
		what := "runtime/default"
		if p.typ == runtimeapi.SecurityProfile_Localhost {
			what = "localhost/" + p.ref
		}
		return fieldErr(p.field, "AppArmor profile %s was asked for, but AppArmor is not enabled on this host", what)
	}
	switch p.typ {
	case runtimeapi.SecurityProfile_RuntimeDefault:
		g.SetProcessApparmorProfile(DefaultAppArmorProfile)
	case runtimeapi.SecurityProfile_Localhost:
		if p.ref == "" {
			return fieldErr(p.field, "a localhost AppArmor profile needs a name")
		}
		g.SetProcessApparmorProfile(p.ref)
	default:
		return fieldErr(p.field, "unknown profile type %v", p.typ)
	}
	return nil
}

var apparmorMu sync.Mutex

// ensureAppArmorProfile loads DefaultAppArmorProfile unless the kernel has
// it already.
func ensureAppArmorProfile() error {
	apparmorMu.Lock()
	defer apparmorMu.Unlock()
	if b, err := os.ReadFile("/sys/kernel/security/apparmor/profiles"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, DefaultAppArmorProfile+" ") {
				return nil
			}
		}
	}
	cmd := exec.Command("apparmor_parser", "-Kr")
	cmd.Stdin = strings.NewReader(defaultAppArmorPolicy)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("load AppArmor profile %s: %v: %s", DefaultAppArmorProfile, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// defaultAppArmorPolicy confines a container much as docker's default does:
// no mounts, no writes to the kernel's knobs under /proc and /sys, signals
// and ptrace only among the profile's own processes.
const defaultAppArmorPolicy = `#include <tunables/global>

profile ` + DefaultAppArmorProfile + ` flags=(attach_disconnected,mediate_deleted) {
  #include <abstractions/base>

  network,
  capability,
  file,
  umount,
  signal (receive) peer=unconfined,
  signal (send,receive) peer=` + DefaultAppArmorProfile + `,
  ptrace (trace,read,tracedby,readby) peer=` + DefaultAppArmorProfile + `,

  deny mount,

  deny @{PROC}/* w,
  deny @{PROC}/{[^1-9],[^1-9][^0-9],[^1-9s][^0-9y][^0-9s],[^1-9][^0-9][^0-9][^0-9/]*}/** w,
  deny @{PROC}/sys/[^k]** w,
  deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,
  deny @{PROC}/sysrq-trigger rwklx,
  deny @{PROC}/kcore rwklx,

  deny /sys/[^f]*/** wklx,
  deny /sys/f[^s]*/** wklx,
  deny /sys/fs/[^c]*/** wklx,
  deny /sys/fs/c[^g]*/** wklx,
  deny /sys/fs/cg[^r]*/** wklx,
  deny /sys/firmware/** rwklx,
  deny /sys/devices/virtual/powercap/** rwklx,
  deny /sys/kernel/security/** rwklx,
}
`
