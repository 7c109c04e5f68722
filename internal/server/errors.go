package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/cradle-runtime/cradle/internal/image"
	"github.com/cradle-runtime/cradle/internal/netns"
	"github.com/cradle-runtime/cradle/internal/ocispec"
	"github.com/cradle-runtime/cradle/internal/store"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func invalid(field, format string, a ...any) error {
	return status.Errorf(codes.InvalidArgument, "%s: %s", field, fmt.Sprintf(format, a...))
}

// checked turns a validation refusal into InvalidArgument, its message
// naming the field.
func checked(err error) error {
	if err == nil {
		return nil
	}
	return status.Error(codes.InvalidArgument, err.Error())
}

// toStatus maps domain errors to gRPC codes, keeping their messages.
func toStatus(err error, format string, a ...any) error {
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
	case errors.As(err, &he), errors.Is(err, image.ErrInUse):
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

// recoverUnary turns a panic into an Internal error: the daemon never dies
// of one bad request.
func recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			slog.Error("panic in request", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "internal error in %s: %v", info.FullMethod, r)
		}
	}()
	return h(ctx, req)
}

func logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	if err != nil {
		slog.Info("request failed", "method", info.FullMethod, "duration", time.Since(start).Round(time.Microsecond), "error", err)
	} else {
		slog.Debug("request", "method", info.FullMethod, "duration", time.Since(start).Round(time.Microsecond))
	}
	return resp, err
}

// lookupForTeardown finds an object for Stop or Remove. ok is false when
// there is nothing to do: an unknown ID is success by the CRI contract, and
// err is set only for bad input (an empty or ambiguous ID).
func lookupForTeardown[T any](idx *store.Index[T], id, field string) (v T, ok bool, err error) {
	if id == "" {
		return v, false, invalid(field, "is empty")
	}
	v, err = idx.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		return v, false, nil
	}
	if err != nil {
		return v, false, toStatus(err, "%s", field)
	}
	return v, true, nil
}
