package peerbench

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/internal/benchkit"
)

// The topics system and the channel baseline are those of the library's
// bench_test.go (which a module cannot import), with the []byte payload.

const topic = "bench"

type topicsSystem struct {
	tb    testing.TB
	cache *topics.Cache
	opts  []topics.SubscribeOption
	wg    sync.WaitGroup
}

func newTopics(tb testing.TB) benchkit.System {
	return newTopicsSystem(tb, topics.DefaultRingSize, false)
}

// newTopicsLossless returns the topics system with a ring of ring items and
// Lossless subscriptions.
func newTopicsLossless(ring int) func(testing.TB) benchkit.System {
	return func(tb testing.TB) benchkit.System { return newTopicsSystem(tb, ring, true) }
}

func newTopicsSystem(tb testing.TB, ring int, lossless bool) *topicsSystem {
	c, err := topics.NewCache("bench", topics.WithRingSize(ring))
	if err != nil {
		tb.Fatal(err)
	}
	s := &topicsSystem{tb: tb, cache: c}
	if lossless {
		s.opts = []topics.SubscribeOption{topics.Lossless()}
	}
	return s
}

func (s *topicsSystem) Publish() {
	if err := s.cache.Publish(context.Background(), topic, benchkit.Payload); err != nil {
		s.tb.Fatal(err)
	}
}

func (s *topicsSystem) Drain(sink *benchkit.Sink) {
	sub, err := s.cache.Subscribe(context.Background(), topic, s.opts...)
	if err != nil {
		s.tb.Fatal(err)
	}
	s.wg.Go(func() {
		ctx := context.Background()
		for {
			it, err := sub.Next(ctx)
			if err != nil {
				return
			}
			sink.Deliver(it.Missed)
		}
	})
}

func (s *topicsSystem) Stall() {
	if _, err := s.cache.Subscribe(context.Background(), topic, s.opts...); err != nil {
		s.tb.Fatal(err)
	}
}

func (s *topicsSystem) Close() {
	_ = s.cache.Close()
	s.wg.Wait()
}

// chanFanout is the baseline: one buffered channel per subscriber, a
// non-blocking send to each, the item dropped for a full one. The payload is
// copied once per publish, as topics does. The blocking variant (the
// baseline of the lossless comparison) waits for room in each subscriber's
// channel in turn instead.
type chanFanout struct {
	buffer int  // items per subscriber's channel
	block  bool // wait for room rather than drop
	subs   atomic.Pointer[[]chanSub]
	wg     sync.WaitGroup
}

type chanSub struct {
	ch   chan []byte
	sink *benchkit.Sink // nil for a stalled subscriber
}

const chanBuffer = topics.DefaultRingSize

func newChannels(testing.TB) benchkit.System { return newChanFanout(chanBuffer, false) }

// newBlockingChannels returns the blocking baseline with buffers of buffer
// items.
func newBlockingChannels(buffer int) func(testing.TB) benchkit.System {
	return func(testing.TB) benchkit.System { return newChanFanout(buffer, true) }
}

func newChanFanout(buffer int, block bool) *chanFanout {
	f := &chanFanout{buffer: buffer, block: block}
	f.subs.Store(new([]chanSub))
	return f
}

func (f *chanFanout) Publish() {
	v := append([]byte(nil), benchkit.Payload...)
	if f.block {
		for _, s := range *f.subs.Load() {
			s.ch <- v
		}
		return
	}
	for _, s := range *f.subs.Load() {
		select {
		case s.ch <- v:
		default:
			if s.sink != nil {
				s.sink.Dropped(1)
			}
		}
	}
}

func (f *chanFanout) add(s chanSub) {
	old := *f.subs.Load()
	next := append(old[:len(old):len(old)], s)
	f.subs.Store(&next)
}

func (f *chanFanout) Drain(sink *benchkit.Sink) {
	ch := make(chan []byte, f.buffer)
	f.add(chanSub{ch: ch, sink: sink})
	f.wg.Go(func() {
		for range ch {
			sink.Deliver(0)
		}
	})
}

func (f *chanFanout) Stall() { f.add(chanSub{ch: make(chan []byte, f.buffer)}) }

func (f *chanFanout) Close() {
	for _, s := range *f.subs.Swap(new([]chanSub)) {
		close(s.ch)
	}
	f.wg.Wait()
}
