package image

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/signature"
)

func TestClassifyPullError(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"manifest unknown", fmt.Errorf("reading manifest: %w", errcode.Error{Code: v2.ErrorCodeManifestUnknown}), ErrNotFound},
		{"name unknown", errcode.Error{Code: v2.ErrorCodeNameUnknown}, ErrNotFound},
		{"401", docker.ErrUnauthorizedForCredentials{Err: errors.New("no")}, ErrUnauthorized},
		{"denied", errcode.Error{Code: errcode.ErrorCodeDenied}, ErrUnauthorized},
		{"refused", fmt.Errorf("pinging registry: %w", refused), ErrUnreachable},
		{"dns", &net.DNSError{Err: "no such host", Name: "nowhere.invalid"}, ErrUnreachable},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), context.DeadlineExceeded},
		{"policy", fmt.Errorf("copy: %w", signature.PolicyRequirementError("rejected by policy")), ErrDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classifyPullError(tc.err)
			if !errors.Is(got, tc.want) {
				t.Fatalf("classifyPullError(%v) = %v, want it to be %v", tc.err, got, tc.want)
			}
			if got.Error() == "" || !errors.Is(got, tc.err) {
				t.Fatalf("the original error was lost: %v", got)
			}
		})
	}
	if other := errors.New("x509: unknown authority"); classifyPullError(other) != other {
		t.Fatal("an unknown error was changed")
	}
}

func TestIsHexIDAndEscapes(t *testing.T) {
	for s, want := range map[string]bool{"abc": true, "sha256:0123abcd": true, "ab": false, "busybox": false, "ABC": false} {
		if got := isHexID(s); got != want {
			t.Errorf("isHexID(%q) = %v", s, got)
		}
	}
	for p, want := range map[string]bool{"etc": false, "a/../b": false, "..": true, "../x": true, "a/../../x": true, "..x": false} {
		if got := escapes(p); got != want {
			t.Errorf("escapes(%q) = %v", p, got)
		}
	}
}

func TestAuthKey(t *testing.T) {
	var none *Auth
	a := &Auth{Username: "u", Password: "p"}
	b := &Auth{Username: "u", Password: "q"}
	if none.key() != "" || a.key() == b.key() || a.key() != (&Auth{Username: "u", Password: "p"}).key() {
		t.Fatal("credentials must key pulls apart, and equal ones together")
	}
	if k := a.key(); k == "u" || k == "p" {
		t.Fatal("the key shows the credential")
	}
}

func TestSystemContextAuth(t *testing.T) {
	s := &Service{}
	o := Options{Root: "/r", RegistriesConf: "/x/registries.conf"}
	s.settings.Store(&settings{opts: o, sys: systemContext(o)})
	if got := s.cur().sys.DockerPerHostCertDirPath; got != "/x/certs.d" {
		t.Fatalf("certs dir = %q, want certs.d beside registries.conf", got)
	}
	if s2 := systemContext(Options{RegistriesConf: "/etc/containers/registries.conf"}); s2.DockerPerHostCertDirPath != "" {
		t.Fatal("the system registries.conf must keep the library's certs.d search path")
	}
	sys := s.systemContext(&Auth{Username: "u", Password: "p", IdentityToken: "id", RegistryToken: "tok"})
	if sys.DockerAuthConfig == nil || sys.DockerAuthConfig.Username != "u" || sys.DockerAuthConfig.Password != "p" ||
		sys.DockerAuthConfig.IdentityToken != "id" || sys.DockerBearerRegistryToken != "tok" {
		t.Fatalf("credentials not passed: %+v %q", sys.DockerAuthConfig, sys.DockerBearerRegistryToken)
	}
	if s.cur().sys.DockerAuthConfig != nil {
		t.Fatal("a request's credentials leaked into the shared context")
	}
}
