package momentoserver

import (
	"context"
	"errors"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/access"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Errors returned by this package. Test them with errors.Is.
var (
	// ErrInvalidOption: New was given an option it does not accept, or no
	// way to authenticate calls.
	ErrInvalidOption = errors.New("momentoserver: invalid option")
	// ErrShutdown ends the subscription streams of a server that is shutting
	// down; clients get UNAVAILABLE, and the SDKs reconnect.
	ErrShutdown = errors.New("momentoserver: server shutting down")
	// ErrServerClosed is what Serve returns once Shutdown was called.
	ErrServerClosed = errors.New("momentoserver: server closed")
)

// The values of the "err" trailer that the Momento SDKs read to tell one
// limit, or one kind of not-found, from another.
const (
	errSubscriptionsLimit = "topic_subscriptions_limit_exceeded"
	errRateLimit          = "operations_rate_limit_exceeded"
	errRequestSize        = "request_size_limit_exceeded"
)

// statusOf turns an error of the engine, of package access or of this
// package into the gRPC status the Momento SDKs map to their own errors,
// with the trailer they read for details (nil if none).
//
// A deleted cache ends subscriptions with an error wrapping both
// topics.ErrClosed and topics.ErrCacheNotFound, and an expired token with
// both topics.ErrClosed and access.ErrTokenExpired: the specific causes are
// tested before ErrClosed.
func statusOf(err error) (*status.Status, metadata.MD) {
	if s, ok := status.FromError(err); ok {
		return s, nil
	}
	code, detail := codes.Internal, ""
	var limit *topics.LimitError
	switch {
	case errors.Is(err, access.ErrTokenInvalid), errors.Is(err, access.ErrTokenExpired):
		code = codes.Unauthenticated
	case errors.Is(err, access.ErrPermissionDenied):
		code = codes.PermissionDenied
	case errors.Is(err, topics.ErrCacheNotFound):
		code = codes.NotFound
	case errors.Is(err, topics.ErrCacheExists):
		code = codes.AlreadyExists
	case errors.Is(err, topics.ErrInvalidName):
		code = codes.InvalidArgument
	case errors.Is(err, topics.ErrValueTooLarge):
		code, detail = codes.ResourceExhausted, errRequestSize
	case errors.As(err, &limit):
		code = codes.ResourceExhausted
		switch limit.Limit {
		case "MaxSubscribers":
			detail = errSubscriptionsLimit
		case "PublishRate":
			detail = errRateLimit
		}
	case errors.Is(err, topics.ErrTopicType):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrShutdown):
		code = codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, topics.ErrClosed):
		code = codes.Unavailable // the engine closed
	}
	var md metadata.MD
	if detail != "" {
		md = metadata.Pairs("err", detail)
	}
	return status.New(code, err.Error()), md
}
