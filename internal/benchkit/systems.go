package benchkit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ringbus/topics"
)

// The systems that the library's benchmarks (bench_test.go) and the peer
// comparison (internal/peerbench) both measure: topics (its subscribers
// reading with Next, or with NextBatch), and a plain channel-per-subscriber
// fan-out as the baseline, each dropping or lossless, with the 16-byte
// []byte Payload or the 16-byte [Tick]. They live here
// rather than in bench_test.go because a module cannot import another
// package's test files. Each function returns a fresh [Spec]; the name it
// gives is the last element of the benchmark names, which cmd/perftable
// parses.

// topic is the one topic of the topics systems.
const topic = "bench"

// Tick is the payload of the typed systems: 16 bytes, no pointers.
type Tick struct {
	Seq   uint64
	Price float64
}

// chanBuffer is the buffer per subscriber of the dropping channel baseline:
// the default ring size of topics.
const chanBuffer = topics.DefaultRingSize

// Topics returns "topics": Cache.Publish of Payload (which copies it once)
// to one topic of a Cache with the default ring.
func Topics() Spec {
	return Spec{Name: "topics", New: func(tb testing.TB) System {
		return newTopicsSystem(tb, topicsConfig{})
	}}
}

// TopicsTyped returns "topics-typed": Topic[Tick].Publish to one topic of a
// Cache with the default ring.
func TopicsTyped() Spec {
	return Spec{Name: "topics-typed", New: func(tb testing.TB) System {
		return newTopicsTypedSystem(tb, topicsConfig{})
	}}
}

// TopicsBatch returns "topics-batch": [Topics] with subscribers that read
// with Subscription.NextBatch into a buffer of BatchRead items.
func TopicsBatch() Spec {
	return Spec{Name: "topics-batch", New: func(tb testing.TB) System {
		return newTopicsSystem(tb, topicsConfig{read: readBatch})
	}}
}

// TopicsTypedBatch returns "topics-typed-batch": [TopicsTyped] with
// subscribers that read with Subscription.NextBatch.
func TopicsTypedBatch() Spec {
	return Spec{Name: "topics-typed-batch", New: func(tb testing.TB) System {
		return newTopicsTypedSystem(tb, topicsConfig{read: readBatch})
	}}
}

// TopicsAll returns "topics-all": [Topics] with subscribers that read with a
// range loop over Subscription.All.
func TopicsAll() Spec {
	return Spec{Name: "topics-all", New: func(tb testing.TB) System {
		return newTopicsSystem(tb, topicsConfig{read: readAll})
	}}
}

// TopicsHandler returns "topics-handler": [Topics] with handlers
// (Cache.Handle) instead of subscribers that read.
func TopicsHandler() Spec {
	return Spec{Name: "topics-handler", New: func(tb testing.TB) System {
		return newTopicsSystem(tb, topicsConfig{read: readHandler})
	}}
}

// TopicsTypedAll returns "topics-typed-all": [TopicsTyped] read with All.
func TopicsTypedAll() Spec {
	return Spec{Name: "topics-typed-all", New: func(tb testing.TB) System {
		return newTopicsTypedSystem(tb, topicsConfig{read: readAll})
	}}
}

// TopicsTypedHandler returns "topics-typed-handler": [TopicsTyped] with
// handlers (Topic.Handle).
func TopicsTypedHandler() Spec {
	return Spec{Name: "topics-typed-handler", New: func(tb testing.TB) System {
		return newTopicsTypedSystem(tb, topicsConfig{read: readHandler})
	}}
}

// BatchRead is the buffer, in items, of the subscribers of the batch
// systems.
const BatchRead = 64

// TopicsLossless returns "topics-lossless": [Topics] with a ring of ring
// items and subscriptions made with Lossless().
func TopicsLossless(ring int) Spec {
	cfg := topicsConfig{ring: ring, lossless: true}
	return Spec{Name: "topics-lossless", Lossless: true, New: func(tb testing.TB) System {
		return newTopicsSystem(tb, cfg)
	}}
}

// TopicsLosslessTyped returns "topics-lossless-typed": [TopicsTyped] with a
// ring of ring items and subscriptions made with Lossless().
func TopicsLosslessTyped(ring int) Spec {
	cfg := topicsConfig{ring: ring, lossless: true}
	return Spec{Name: "topics-lossless-typed", Lossless: true, New: func(tb testing.TB) System {
		return newTopicsTypedSystem(tb, cfg)
	}}
}

// Channels returns "channels": the channel baseline (see chanFanout) with
// 1,024-item buffers and a dropping send of a copy of Payload.
func Channels() Spec {
	return Spec{Name: "channels", New: func(testing.TB) System {
		return newChanFanout(copyPayload, chanBuffer, false)
	}}
}

// ChannelsTyped returns "channels-typed": [Channels] with a Tick.
func ChannelsTyped() Spec {
	return Spec{Name: "channels-typed", New: func(testing.TB) System {
		return newChanFanout(newTicker(), chanBuffer, false)
	}}
}

// ChannelsBlocking returns "channels-blocking": the channel baseline with
// buffers of buffer items and a blocking send of a copy of Payload.
func ChannelsBlocking(buffer int) Spec {
	return Spec{Name: "channels-blocking", Lossless: true, New: func(testing.TB) System {
		return newChanFanout(copyPayload, buffer, true)
	}}
}

// ChannelsBlockingTyped returns "channels-blocking-typed": [ChannelsBlocking]
// with a Tick.
func ChannelsBlockingTyped(buffer int) Spec {
	return Spec{Name: "channels-blocking-typed", Lossless: true, New: func(testing.TB) System {
		return newChanFanout(newTicker(), buffer, true)
	}}
}

func copyPayload() []byte { return append([]byte(nil), Payload...) }

// newTicker returns a function that makes the typed payload of each publish.
func newTicker() func() Tick {
	var seq uint64
	return func() Tick { seq++; return Tick{Seq: seq, Price: 1.5} }
}

// topicsConfig says how a topics system is set up.
type topicsConfig struct {
	ring     int  // WithRingSize; 0 for the default
	lossless bool // subscribe with Lossless()
	read     readMode
}

// readMode is how the subscribers of a topics system read.
type readMode int

const (
	readNext    readMode = iota // Subscription.Next
	readBatch                   // Subscription.NextBatch, BatchRead items at most
	readAll                     // a range loop over Subscription.All
	readHandler                 // a Handler's function
)

func (cfg topicsConfig) newCache(tb testing.TB) *topics.Cache {
	var opts []topics.Option
	if cfg.ring != 0 {
		opts = append(opts, topics.WithRingSize(cfg.ring))
	}
	c, err := topics.NewCache("bench", opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func (cfg topicsConfig) subscribeOptions() []topics.SubscribeOption {
	if cfg.lossless {
		return []topics.SubscribeOption{topics.Lossless()}
	}
	return nil
}

// readers is what the two topics systems share: a cache with one topic,
// whose subscribers read as read says, and their end.
type readers[T any] struct {
	tb       testing.TB
	cache    *topics.Cache
	topic    *topics.Topic[T] // for a system of Values, the topic Cache.Publish uses
	opts     []topics.SubscribeOption
	read     readMode
	handlers []*topics.Handler
	wg       sync.WaitGroup
}

func (s *readers[T]) init(tb testing.TB, cfg topicsConfig) {
	s.tb, s.cache, s.opts, s.read = tb, cfg.newCache(tb), cfg.subscribeOptions(), cfg.read
	var err error
	if s.topic, err = topics.TopicOf[T](s.cache, topic); err != nil {
		tb.Fatal(err)
	}
}

func (s *readers[T]) Drain(sink *Sink) {
	if s.read == readHandler {
		h, err := s.topic.Handle(context.Background(), deliverTo[T](sink), s.opts...)
		if err != nil {
			s.tb.Fatal(err)
		}
		s.handlers = append(s.handlers, h)
		return
	}
	sub, err := s.topic.Subscribe(context.Background(), s.opts...)
	if err != nil {
		s.tb.Fatal(err)
	}
	s.wg.Go(func() { drain(sub, sink, s.read) })
}

func (s *readers[T]) Stall() {
	if _, err := s.topic.Subscribe(context.Background(), s.opts...); err != nil {
		s.tb.Fatal(err)
	}
}

func (s *readers[T]) Close() {
	_ = s.cache.Close() // ends every subscription and handler
	s.wg.Wait()
	for _, h := range s.handlers {
		<-h.Done()
	}
}

// topicsSystem is a Cache with one topic, published with Cache.Publish.
type topicsSystem struct {
	readers[topics.Value]
}

func newTopicsSystem(tb testing.TB, cfg topicsConfig) *topicsSystem {
	s := new(topicsSystem)
	s.init(tb, cfg)
	return s
}

func (s *topicsSystem) Publish() {
	if err := s.cache.Publish(context.Background(), topic, Payload); err != nil {
		s.tb.Fatal(err)
	}
}

// drain reads sub until it ends, reporting every item to sink, as read
// says.
func drain[T any](sub *topics.Subscription[T], sink *Sink, read readMode) {
	switch read {
	case readBatch:
		drainBatch(sub, sink)
	case readAll:
		for it, err := range sub.All(context.Background()) {
			if err != nil {
				return
			}
			sink.Deliver(it.Missed)
		}
	default:
		drainTopic(sub, sink)
	}
}

// deliverTo returns a handler function that reports every item to sink.
func deliverTo[T any](sink *Sink) func(context.Context, topics.Item[T]) error {
	return func(_ context.Context, it topics.Item[T]) error {
		sink.Deliver(it.Missed)
		return nil
	}
}

// drainBatch reads sub with NextBatch until it ends, reporting every item
// to sink.
func drainBatch[T any](sub *topics.Subscription[T], sink *Sink) {
	ctx := context.Background()
	items := make([]topics.Item[T], BatchRead)
	for {
		n, err := sub.NextBatch(ctx, items)
		if err != nil {
			return
		}
		for i := range items[:n] {
			sink.Deliver(items[i].Missed)
		}
	}
}

// drainTopic reads sub until it ends, reporting every item to sink.
func drainTopic[T any](sub *topics.Subscription[T], sink *Sink) {
	ctx := context.Background()
	for {
		it, err := sub.Next(ctx)
		if err != nil {
			return
		}
		sink.Deliver(it.Missed)
	}
}

// topicsTypedSystem is a Cache with one Topic[Tick].
type topicsTypedSystem struct {
	readers[Tick]
	seq uint64
}

func newTopicsTypedSystem(tb testing.TB, cfg topicsConfig) *topicsTypedSystem {
	s := new(topicsTypedSystem)
	s.init(tb, cfg)
	return s
}

func (s *topicsTypedSystem) Publish() {
	s.seq++
	if err := s.topic.Publish(context.Background(), Tick{Seq: s.seq, Price: 1.5}); err != nil {
		s.tb.Fatal(err)
	}
}

// chanFanout is the baseline: a plain channel-per-subscriber fan-out. Each
// subscriber has a buffered channel of buffer items (chanBuffer, the default
// ring size of topics, unless lossless runs size it); a publish makes one
// value (for []byte, one copy of the payload, which topics also makes) and
// offers it to every subscriber with a non-blocking send, dropping it for a
// subscriber whose buffer is full. The subscriber list is an immutable slice
// behind an atomic pointer, so a publish takes no lock: the baseline is as
// lean as a channel fan-out gets.
//
// The blocking variant, the baseline of the lossless fan-out, sends to each
// subscriber in turn and waits while that one's buffer is full, as a
// channel broker that never drops does.
type chanFanout[T any] struct {
	value  func() T
	buffer int  // items per subscriber's channel
	block  bool // wait for room rather than drop
	subs   atomic.Pointer[[]chanSub[T]]
	wg     sync.WaitGroup
}

type chanSub[T any] struct {
	ch   chan T
	sink *Sink // nil for a stalled subscriber
}

func newChanFanout[T any](value func() T, buffer int, block bool) *chanFanout[T] {
	f := &chanFanout[T]{value: value, buffer: buffer, block: block}
	f.subs.Store(new([]chanSub[T]))
	return f
}

func (f *chanFanout[T]) Publish() {
	v := f.value()
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

// add subscribes s (copy-on-write; subscribing is not on the measured path).
func (f *chanFanout[T]) add(s chanSub[T]) {
	old := *f.subs.Load()
	next := append(old[:len(old):len(old)], s)
	f.subs.Store(&next)
}

func (f *chanFanout[T]) Drain(sink *Sink) {
	ch := make(chan T, f.buffer)
	f.add(chanSub[T]{ch: ch, sink: sink})
	f.wg.Go(func() {
		for range ch {
			sink.Deliver(0)
		}
	})
}

func (f *chanFanout[T]) Stall() { f.add(chanSub[T]{ch: make(chan T, f.buffer)}) }

func (f *chanFanout[T]) Close() {
	for _, s := range *f.subs.Swap(new([]chanSub[T])) {
		close(s.ch)
	}
	f.wg.Wait()
}
