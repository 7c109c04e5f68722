package image

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/docker/distribution/registry/api/errcode"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/signature"
)

// Sentinel errors that the server maps to gRPC codes.
var (
	ErrNotFound         = errors.New("image not found")
	ErrInvalidReference = errors.New("invalid image reference")
	ErrInUse            = errors.New("image is in use")
	ErrInvalidSubPath   = errors.New("invalid image volume sub path")
	ErrUnauthorized     = errors.New("registry refused the credentials")
	ErrDenied           = errors.New("pull denied by the registries.conf or signature policy")
	ErrUnreachable      = errors.New("registry is unreachable")
)

// classifyPullError tags a pull error with the sentinel that fits it, so
// the server can pick a code; the message stays the library's.
func classifyPullError(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var rejected signature.PolicyRequirementError
	if errors.As(err, &rejected) {
		return fmt.Errorf("%w: %w", ErrDenied, err)
	}
	var unauth docker.ErrUnauthorizedForCredentials
	if errors.As(err, &unauth) {
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	var ec errcode.ErrorCoder
	if errors.As(err, &ec) {
		switch ec.ErrorCode().Descriptor().Value {
		case "MANIFEST_UNKNOWN", "NAME_UNKNOWN":
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case "UNAUTHORIZED", "DENIED":
			return fmt.Errorf("%w: %w", ErrUnauthorized, err)
		}
	}
	// Dial and DNS failures only: a TLS or HTTP failure means the registry
	// was reached and refused.
	var oe *net.OpError
	var de *net.DNSError
	if errors.As(err, &oe) || errors.As(err, &de) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return err
}
