package peerbench

import (
	"sync"
	"testing"

	"github.com/cskr/pubsub/v2"

	"github.com/ringbus/topics/internal/benchkit"
)

// cskrCapacity is the channel capacity of every cskr/pubsub subscriber, the
// same 1,024 items as everywhere else (but for the lossless comparison with
// a small ring, where it is the ring's size).
const cskrCapacity = 1024

// cskrSystem is github.com/cskr/pubsub: one goroutine owns the subscriber
// table and serves publishes sent to it over a channel. Pub sends to each
// subscriber's channel and waits for room; TryPub drops the item for a full
// channel.
type cskrSystem struct {
	ps  *pubsub.PubSub[string, []byte]
	try bool
	wg  sync.WaitGroup
}

func newCskr(try bool) func(testing.TB) benchkit.System { return newCskrCapacity(cskrCapacity, try) }

func newCskrCapacity(capacity int, try bool) func(testing.TB) benchkit.System {
	return func(testing.TB) benchkit.System {
		return &cskrSystem{ps: pubsub.New[string, []byte](capacity), try: try}
	}
}

func (s *cskrSystem) Publish() {
	if s.try {
		s.ps.TryPub(benchkit.Payload, topic)
	} else {
		s.ps.Pub(benchkit.Payload, topic)
	}
}

func (s *cskrSystem) Drain(sink *benchkit.Sink) {
	ch := s.ps.Sub(topic)
	s.wg.Go(func() {
		for range ch {
			sink.Deliver(0)
		}
	})
}

func (s *cskrSystem) Stall() { s.ps.Sub(topic) }

func (s *cskrSystem) Close() {
	s.ps.Shutdown() // closes every subscriber's channel
	s.wg.Wait()
}
