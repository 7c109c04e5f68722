package ocispec

import (
	"fmt"
	"strings"
	"sync"

	"github.com/moby/profiles/apparmor"

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

// The AppArmor loader: variables so that tests can stand in for the
// kernel and apparmor_parser.
var (
	apparmorLoaded  = apparmor.IsLoaded
	apparmorInstall = apparmor.InstallDefault
)

var apparmorMu sync.Mutex

// ensureAppArmorProfile loads DefaultAppArmorProfile, moby's default
// container profile, unless the kernel has it already. An unreadable
// profile list counts as not loaded: loading reports the real problem.
func ensureAppArmorProfile() error {
	apparmorMu.Lock()
	defer apparmorMu.Unlock()
	if loaded, err := apparmorLoaded(DefaultAppArmorProfile); err == nil && loaded {
		return nil
	}
	if err := apparmorInstall(DefaultAppArmorProfile); err != nil {
		return fmt.Errorf("load AppArmor profile %s: %w", DefaultAppArmorProfile, err)
	}
	return nil
}
