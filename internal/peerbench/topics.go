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
	wg    sync.WaitGroup
}

func newTopics(tb testing.TB) benchkit.System {
	c, err := topics.NewCache("bench")
	if err != nil {
		tb.Fatal(err)
	}
	return &topicsSystem{tb: tb, cache: c}
}

func (s *topicsSystem) Publish() {
	if err := s.cache.Publish(context.Background(), topic, benchkit.Payload); err != nil {
		s.tb.Fatal(err)
	}
}

func (s *topicsSystem) Drain(sink *benchkit.Sink) {
	sub, err := s.cache.Subscribe(context.Background(), topic)
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
	if _, err := s.cache.Subscribe(context.Background(), topic); err != nil {
		s.tb.Fatal(err)
	}
}

func (s *topicsSystem) Close() {
	_ = s.cache.Close()
	s.wg.Wait()
}

// chanFanout is the baseline: one buffered channel per subscriber, a
// non-blocking send to each, the item dropped for a full one. The payload is
// copied once per publish, as topics does.
type chanFanout struct {
	subs atomic.Pointer[[]chanSub]
	wg   sync.WaitGroup
}

type chanSub struct {
	ch   chan []byte
	sink *benchkit.Sink // nil for a stalled subscriber
}

const chanBuffer = topics.DefaultRingSize

func newChannels(testing.TB) benchkit.System {
	f := &chanFanout{}
	f.subs.Store(new([]chanSub))
	return f
}

func (f *chanFanout) Publish() {
	v := append([]byte(nil), benchkit.Payload...)
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
	ch := make(chan []byte, chanBuffer)
	f.add(chanSub{ch: ch, sink: sink})
	f.wg.Go(func() {
		for range ch {
			sink.Deliver(0)
		}
	})
}

func (f *chanFanout) Stall() { f.add(chanSub{ch: make(chan []byte, chanBuffer)}) }

func (f *chanFanout) Close() {
	for _, s := range *f.subs.Swap(new([]chanSub)) {
		close(s.ch)
	}
	f.wg.Wait()
}
