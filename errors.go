package topics

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors returned by this package. Every error it returns wraps one of these
// (or a context error), so callers test them with [errors.Is].
var (
	// ErrCacheNotFound: no cache has that name, or it was deleted.
	ErrCacheNotFound = errors.New("topics: cache not found")
	// ErrCacheExists: CreateCache was given a name that is taken.
	ErrCacheExists = errors.New("topics: cache already exists")
	// ErrClosed: the subscription, cache or engine has been closed or has
	// ended. Every error that ends a subscription wraps ErrClosed, together
	// with the reason where there is one.
	ErrClosed = errors.New("topics: closed")
	// ErrInvalidName: a cache or topic name breaks the naming rules.
	ErrInvalidName = errors.New("topics: invalid name")
	// ErrValueTooLarge: a payload is larger than the cache's MaxValueSize.
	ErrValueTooLarge = errors.New("topics: value too large")
	// ErrLimitExceeded: a limit of the cache was reached. The error is a
	// *LimitError that says which.
	ErrLimitExceeded = errors.New("topics: limit exceeded")
	// ErrTopicType: the topic exists and carries values of another type.
	ErrTopicType = errors.New("topics: topic carries another type")
	// ErrInvalidOption: an option was given a value it does not accept.
	ErrInvalidOption = errors.New("topics: invalid option")
	// ErrHeldBack: a publish gave up waiting for a Lossless subscription
	// that had not read the item it would overwrite. The error also wraps
	// the publish context's error, and says how many lossless
	// subscriptions held it back.
	ErrHeldBack = errors.New("topics: publish held back by a lossless subscription")
)

// A LimitError reports that a limit of a cache was reached. It matches
// ErrLimitExceeded with errors.Is; use errors.As to read which limit it was.
//
// Limits of a whole cache ("MaxTopics", "MaxSubscribers") set Cache, Limit
// and Max. The byte budget ("MaxBytes", see WithMaxBytes) also sets the
// Topic of the refused publish. The per-topic publish rate ("PublishRate",
// see WithPublishRate) also sets Topic, Rate and RetryAfter, and Max is then
// its burst.
type LimitError struct {
	Cache string // the cache whose limit was hit
	Limit string // the limit's name, as in its option: "MaxTopics", "MaxSubscribers", "MaxBytes", "PublishRate"
	Max   int    // the limit's value; for PublishRate, the burst

	Topic      string        // for a per-topic limit: the topic; else ""
	Rate       float64       // for PublishRate: the publishes per second allowed; else 0
	RetryAfter time.Duration // for PublishRate: how long until a publish would be accepted; else 0
}

func (e *LimitError) Error() string {
	if e.Rate != 0 {
		return fmt.Sprintf("topics: limit exceeded: topic %s of cache %q allows at most %s=%g/s with bursts of %d; retry in %v",
			quoteName(e.Topic), e.Cache, e.Limit, e.Rate, e.Max, e.RetryAfter)
	}
	return fmt.Sprintf("topics: limit exceeded: cache %q allows at most %s=%d", e.Cache, e.Limit, e.Max)
}

// Is reports whether target is ErrLimitExceeded.
func (e *LimitError) Is(target error) bool { return target == ErrLimitExceeded }

// endError is what Next returns once a subscription has ended, and what calls
// on a closed cache return. It wraps ErrClosed and, where there is one, the
// reason (ErrCacheNotFound for a deleted cache, the context's cause).
type endError struct {
	msg   string
	cause error
}

func (e *endError) Error() string { return e.msg }

func (e *endError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrClosed}
	}
	return []error{ErrClosed, e.cause}
}

// mustContext panics if ctx is nil. A nil Context is a programming error,
// refused at once as the standard library refuses it, rather than failing
// deep inside the call.
func mustContext(ctx context.Context) {
	if ctx == nil {
		panic("topics: nil Context")
	}
}
