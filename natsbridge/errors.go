package natsbridge

import (
	"errors"
	"fmt"
)

// Errors returned by this package. Errors it returns wrap one of these, or
// an error of package topics (topics.ErrClosed once the bridge is closed),
// and the error of NATS or of the context that caused them.
var (
	// ErrUnavailable: NATS or JetStream did not answer in time, or the
	// connection is down. A Publish that fails with it may have been
	// sequenced nevertheless (its acknowledgement was lost), unless the
	// connection was down when it was called: then nothing was sent.
	ErrUnavailable = errors.New("natsbridge: NATS JetStream is unavailable")
	// ErrConflict: a JetStream stream of the name this bridge derives for a
	// topic exists, but belongs to another topic or was not made by a
	// bridge.
	ErrConflict = errors.New("natsbridge: stream belongs to something else")
)

// unavailable wraps err, a failure to reach NATS, in ErrUnavailable.
func unavailable(t *topic, what string, err error) error {
	return fmt.Errorf("%w: %s topic %s of cache %q: %w", ErrUnavailable, what, t.name, t.cache, err)
}
