package ocispec

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The deprecated seccomp annotations, read from the container's and the
// pod's annotations when the security context names no profile.
const (
	AnnSeccompPod             = "seccomp.security.alpha.kubernetes.io/pod"
	AnnSeccompContainerPrefix = "container.seccomp.security.alpha.kubernetes.io/"
)

// securityProfile is a profile asked for, and the CRI field that asked.
type securityProfile struct {
	typ   runtimeapi.SecurityProfile_ProfileType
	ref   string
	field string // the field to name in errors about ref
}

// seccompProfile picks the profile: the seccomp field, then the deprecated
// seccomp_profile_path, then the container's annotation, then the pod's
// (each looked up in the container's annotations, then the pod's); else
// unconfined, as the CRI defines it.
func seccompProfile(in *ContainerInput) (securityProfile, error) {
	sc := in.Config.GetLinux().GetSecurityContext()
	if p := sc.GetSeccomp(); p != nil {
		return securityProfile{p.GetProfileType(), p.GetLocalhostRef(), "linux.security_context.seccomp.localhost_ref"}, nil
	}
	if s := sc.GetSeccompProfilePath(); s != "" {
		return deprecatedSeccomp(s, "linux.security_context.seccomp_profile_path")
	}
	keys := []string{AnnSeccompContainerPrefix + in.Config.GetMetadata().GetName(), AnnSeccompPod}
	for _, k := range keys {
		if v, ok := in.Config.GetAnnotations()[k]; ok {
			return deprecatedSeccomp(v, "annotations["+k+"]")
		}
		if v, ok := in.Sandbox.Annotations[k]; ok {
			return deprecatedSeccomp(v, "pod annotations["+k+"]")
		}
	}
	return securityProfile{typ: runtimeapi.SecurityProfile_Unconfined}, nil
}

// deprecatedSeccomp parses the forms the original ocid took.
func deprecatedSeccomp(s, field string) (securityProfile, error) {
	switch {
	case s == "runtime/default" || s == "docker/default":
		return securityProfile{typ: runtimeapi.SecurityProfile_RuntimeDefault}, nil
	case s == "unconfined" || s == "":
		return securityProfile{typ: runtimeapi.SecurityProfile_Unconfined}, nil
	case strings.HasPrefix(s, "localhost/"):
		return securityProfile{runtimeapi.SecurityProfile_Localhost, strings.TrimPrefix(s, "localhost/"), field}, nil
	}
	return securityProfile{}, fieldErr(field, "unknown seccomp profile %q: want runtime/default, docker/default, unconfined or localhost/<path>", s)
}

// setSeccomp applies the profile. RuntimeDefault is the moby default
// profile, which allows more calls as the capabilities allow more; so it
// runs after the capabilities are set.
func setSeccomp(g *generate.Generator, in *ContainerInput) error {
	p, err := seccompProfile(in)
	if err != nil {
		return err
	}
	switch p.typ {
	case runtimeapi.SecurityProfile_Unconfined:
		g.Config.Linux.Seccomp = nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		s, err := seccomp.GetDefaultProfile(g.Config)
		if in.Defaults.SeccompProfile != "" {
			s, err = seccomp.LoadProfile(in.Defaults.SeccompProfile, g.Config)
		}
		if err != nil {
			return fieldErr("linux.security_context.seccomp", "default profile: %v", err)
		}
		g.Config.Linux.Seccomp = s
	case runtimeapi.SecurityProfile_Localhost:
		if !filepath.IsAbs(p.ref) {
			return fieldErr(p.field, "seccomp profile %q is not an absolute path", p.ref)
		}
		body, err := readProfile(p.ref)
		if err != nil {
			return fieldErr(p.field, "seccomp profile: %v", err)
		}
		s, err := seccomp.LoadProfile(string(body), g.Config)
		if err != nil {
			return fieldErr(p.field, "seccomp profile %s: %v", p.ref, err)
		}
		g.Config.Linux.Seccomp = s
	default:
		return fieldErr("linux.security_context.seccomp.profile_type", "unknown profile type %v", p.typ)
	}
	return nil
}

// LoadDefaultProfile reads runtime.seccomp_profile and checks that it
// parses, so that a bad file fails the start or the reload, not a pod.
func LoadDefaultProfile(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	body, err := readProfile(path)
	if err != nil {
		return "", fmt.Errorf("runtime.seccomp_profile: %w", err)
	}
	if _, err := seccomp.LoadProfile(string(body), &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}); err != nil {
		return "", fmt.Errorf("runtime.seccomp_profile %s: %w", path, err)
	}
	return string(body), nil
}

// maxProfileSize bounds a localhost profile; the moby default is 20 KiB.
const maxProfileSize = 1 << 20

// readProfile reads a regular file of at most maxProfileSize: a path the
// request names could be a FIFO or /dev/zero, which would hang or exhaust
// the daemon.
func readProfile(path string) ([]byte, error) {
	f, err := regularFile(os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxProfileSize {
		return nil, fmt.Errorf("%s is %d bytes; the limit is %d", path, fi.Size(), maxProfileSize)
	}
	return io.ReadAll(io.LimitReader(f, maxProfileSize+1))
}
