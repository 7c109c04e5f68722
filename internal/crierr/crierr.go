// Package crierr maps the domain packages' errors to the gRPC status codes
// the CRI expects, with messages that name the field.
package crierr

import (
	"context"
	"errors"
	"fmt"

	"github.com/cradle-runtime/cradle/internal/image"
	"github.com/cradle-runtime/cradle/internal/netns"
	"github.com/cradle-runtime/cradle/internal/ocispec"
	"github.com/cradle-runtime/cradle/internal/runtime"
	"github.com/cradle-runtime/cradle/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Invalid is InvalidArgument for a request field.
func Invalid(field, format string, a ...any) error {
	return status.Errorf(codes.InvalidArgument, "%s: %s", field, fmt.Sprintf(format, a...))
}

// Checked turns a validation refusal into InvalidArgument, its message
// naming the field.
func Checked(err error) error {
	if err == nil {
		return nil
	}
	return status.Error(codes.InvalidArgument, err.Error())
}

// ToStatus maps domain errors to gRPC codes, keeping their messages.
func ToStatus(err error, format string, a ...any) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	msg := fmt.Sprintf(format, a...) + ": " + err.Error()
	var fe *ocispec.FieldError
	var he *ocispec.HostError
	switch {
	case errors.As(err, &fe), errors.Is(err, image.ErrInvalidReference), errors.Is(err, image.ErrInvalidSubPath),
		errors.Is(err, netns.ErrNotNamespaced), errors.Is(err, netns.ErrHostNamespace):
		return status.Error(codes.InvalidArgument, msg)
	case errors.Is(err, store.ErrNotFound), errors.Is(err, image.ErrNotFound):
		return status.Error(codes.NotFound, msg)
	case errors.Is(err, store.ErrAmbiguous):
		return status.Error(codes.InvalidArgument, msg)
	case errors.As(err, &he), errors.Is(err, image.ErrInUse), errors.Is(err, runtime.ErrMonitorStart):
		return status.Error(codes.FailedPrecondition, msg)
	case errors.Is(err, image.ErrUnauthorized):
		return status.Error(codes.Unauthenticated, msg)
	case errors.Is(err, image.ErrDenied):
		return status.Error(codes.PermissionDenied, msg)
	case errors.Is(err, image.ErrUnreachable):
		return status.Error(codes.Unavailable, msg)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, msg)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, msg)
	}
	return status.Error(codes.Unknown, msg)
}

// LookupForTeardown finds an object for Stop or Remove. ok is false when
// there is nothing to do: an unknown ID is success by the CRI contract, and
// err is set only for bad input (an empty or ambiguous ID).
func LookupForTeardown[T any](idx *store.Index[T], id, field string) (v T, ok bool, err error) {
	if id == "" {
		return v, false, Invalid(field, "is empty")
	}
	v, err = idx.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		return v, false, nil
	}
	if err != nil {
		return v, false, ToStatus(err, "%s", field)
	}
	return v, true, nil
}
