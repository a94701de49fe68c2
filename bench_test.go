package topics_test

// Benchmarks of topics beside a plain channel-per-subscriber fan-out, run on
// the same scenarios by the same harness (internal/benchkit). Run them with
//
//	go test -run='^$' -bench=. -benchmem -count=5 .
//
// and compare medians (BENCHMARKS.md has the tables and the
// command that makes it). Every benchmark reports ns/op and allocs/op, and a
// figure of its own with b.ReportMetric:
//
//	BenchmarkPublish   ns/publish   publisher's time per publish
//	BenchmarkFanout    ns/delivery  elapsed time / items actually delivered
//	                   missed/op    items missed per publish, all subscribers
//	                   allocs/delivery
//	BenchmarkLosslessFanout  the same, for subscribers that lose nothing,
//	                   with the default ring and with a small one
//	BenchmarkWakeup    p50-ns, p99-ns  publish → parked subscriber has it
//	BenchmarkOverload  deliveries/s, ns/publish, missed/op: a publisher
//	                   that never waits, 100 subscribers
//	BenchmarkMemory    B/subscription, B/topic  live heap after GC / count
//
// Systems, the last element of each name; all but chan-handoff are in
// internal/benchkit/systems.go, shared with the peer comparison:
//
//	topics          Cache.Publish of a 16-byte []byte (copied once)
//	topics-typed    Topic[benchkit.Tick].Publish of a 16-byte struct
//	topics-batch, topics-typed-batch
//	                the same, read with NextBatch (64 items at most per
//	                call); in BenchmarkFanout only
//	topics-all, topics-typed-all
//	                the same, read with a range loop over All; in
//	                BenchmarkFanout only
//	topics-handler, topics-typed-handler
//	                the same, delivered to handlers (Handle); in
//	                BenchmarkFanout only
//	channels        the baseline with the same []byte (copied once): a
//	                buffered channel per subscriber, a non-blocking send
//	channels-typed  the baseline with the struct
//	chan-handoff    an unbuffered channel between two goroutines (wake-up only)
//
// and, in BenchmarkLosslessFanout only, with the ring (buffer) size in the
// name of the enclosing benchmark, ring=N:
//
//	topics-lossless          topics, subscriptions made with Lossless()
//	topics-lossless-typed    topics-typed, the same
//	channels-blocking        the baseline with a blocking send and N-item buffers
//	channels-blocking-typed  the same with the struct

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/internal/benchkit"
	"github.com/ringbus/topics/internal/ring"
)

// benchTopic is the topic of the memory benchmarks.
const benchTopic = "bench"

var (
	specTopics        = benchkit.Topics()
	specTopicsTyped   = benchkit.TopicsTyped()
	specTopicsBatch   = benchkit.TopicsBatch()
	specTypedBatch    = benchkit.TopicsTypedBatch()
	specTopicsAll     = benchkit.TopicsAll()
	specTopicsHandler = benchkit.TopicsHandler()
	specTypedAll      = benchkit.TopicsTypedAll()
	specTypedHandler  = benchkit.TopicsTypedHandler()
	specChannels      = benchkit.Channels()
	specChannelsTyped = benchkit.ChannelsTyped()
	specHandoff       = benchkit.Spec{Name: "chan-handoff", New: func(testing.TB) benchkit.System {
		return newHandoff()
	}}
)

// losslessSpecs returns the systems of the lossless fan-out with a ring (for
// the channels, a buffer) of ring items: topics with Lossless subscriptions,
// and the channel baseline with a blocking send instead of a dropping one.
func losslessSpecs(ring int) []benchkit.Spec {
	return []benchkit.Spec{
		benchkit.TopicsLossless(ring),
		benchkit.TopicsLosslessTyped(ring),
		benchkit.ChannelsBlocking(ring),
		benchkit.ChannelsBlockingTyped(ring),
	}
}

// TestBenchSystems checks that the systems the benchmarks measure deliver
// every item, so that a benchmark never times a system that lost its way.
func TestBenchSystems(t *testing.T) {
	for _, spec := range []benchkit.Spec{specTopics, specTopicsTyped, specTopicsBatch, specTypedBatch, specTopicsAll, specTypedAll, specTopicsHandler, specTypedHandler, specChannels, specChannelsTyped} {
		t.Run(spec.Name, func(t *testing.T) { benchkit.Check(t, spec, 3) })
	}
	// The hand-off is one channel: each item reaches one subscriber.
	t.Run(specHandoff.Name, func(t *testing.T) { benchkit.Check(t, specHandoff, 1) })
	for _, ring := range benchkit.LosslessRings {
		for _, spec := range losslessSpecs(ring) {
			t.Run(benchkit.Name("ring", ring)+"/"+spec.Name, func(t *testing.T) { benchkit.Check(t, spec, 3) })
		}
	}
}

func BenchmarkPublish(b *testing.B) {
	specs := []benchkit.Spec{specTopics, specTopicsTyped, specChannels, specChannelsTyped}
	for _, sc := range benchkit.PublishCases {
		b.Run(sc.Name, func(b *testing.B) {
			for _, spec := range specs {
				b.Run(spec.Name, func(b *testing.B) {
					benchkit.Publish(b, spec, sc.Draining, sc.Stalled)
				})
			}
		})
	}
}

func BenchmarkFanout(b *testing.B) {
	for _, n := range benchkit.FanoutSubs {
		b.Run(benchkit.Name("subs", n), func(b *testing.B) {
			for _, spec := range []benchkit.Spec{specTopics, specTopicsTyped, specTopicsBatch, specTypedBatch, specTopicsAll, specTypedAll, specTopicsHandler, specTypedHandler, specChannels, specChannelsTyped} {
				b.Run(spec.Name, func(b *testing.B) { benchkit.Fanout(b, spec, n) })
			}
		})
	}
}

// BenchmarkLosslessFanout is BenchmarkFanout for subscribers that lose
// nothing: topics with Lossless subscriptions and the channel baseline with
// a blocking send, named ring=N/subs=M/system. With the default ring the
// harness never lets the publisher get a ring ahead, so nobody waits; with
// ring=64 (benchkit.SmallRing) the publisher waits for the slowest
// subscriber all the time. A missed item fails the benchmark.
func BenchmarkLosslessFanout(b *testing.B) {
	for _, ring := range benchkit.LosslessRings {
		b.Run(benchkit.Name("ring", ring), func(b *testing.B) {
			for _, n := range benchkit.LosslessSubs {
				b.Run(benchkit.Name("subs", n), func(b *testing.B) {
					for _, spec := range losslessSpecs(ring) {
						b.Run(spec.Name, func(b *testing.B) { benchkit.Fanout(b, spec, n) })
					}
				})
			}
		})
	}
}

// BenchmarkOverload is a publisher that never waits for the harness, and
// 100 subscribers on a 2-core machine that cannot keep up: topics drops
// for them and tells them (Missed), the blocking channel baseline holds the
// publisher back. Reported: deliveries/s, the publisher's ns/publish, and
// missed/op.
func BenchmarkOverload(b *testing.B) {
	const subs = 100
	for _, spec := range []benchkit.Spec{specTopics, specTopicsBatch, specTopicsTyped, specTypedBatch, benchkit.ChannelsBlocking(topics.DefaultRingSize), benchkit.ChannelsBlockingTyped(topics.DefaultRingSize)} {
		b.Run(benchkit.Name("subs", subs)+"/"+spec.Name, func(b *testing.B) { benchkit.Overload(b, spec, subs) })
	}
}

func BenchmarkWakeup(b *testing.B) {
	// topics-typed publishes the handoff's Tick, with no copy and no
	// lookup by name: the like-for-like comparison with chan-handoff.
	for _, spec := range []benchkit.Spec{specTopics, specTopicsTyped, specChannels, specHandoff} {
		b.Run(spec.Name, func(b *testing.B) { benchkit.Wakeup(b, spec) })
	}
}

// BenchmarkMemory measures what subscriptions and topics keep alive: the live
// heap after a full GC with count of them, minus the live heap before, divided
// by count. One op is one such measurement.
//
// A topic's ring costs 8 bytes per slot (a sequence number) and 8 per block
// of up to 32 slots, plus a few, for its table of chunks (ring.Footprint):
// 8,512 bytes at the default RingSize of 1,024. A topic of Values under a
// byte budget (WithMaxBytes; on by default) also notes the payload size of
// each slot, 4 bytes per slot: 4,096 more. B/topic-beyond-ring is B/topic
// minus both, the figure to hold against "a topic costs its ring plus under
// 512 bytes". topic-published also holds one published item, and
// with it the first chunk of ring entries (see "Entries and their reuse" in
// internal/ring) and the payload.
func BenchmarkMemory(b *testing.B) {
	const count = 1000
	ctx := context.Background()
	b.Run("subscription/topics", func(b *testing.B) {
		measureHeap(b, count, "B/subscription", func(c *topics.Cache) func(int) any {
			return func(int) any { return must(c.Subscribe(ctx, benchTopic)) }
		})
	})
	b.Run("subscription-ctx/topics", func(b *testing.B) {
		// A Subscribe context that can end costs a context.AfterFunc.
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		measureHeap(b, count, "B/subscription", func(c *topics.Cache) func(int) any {
			return func(int) any { return must(c.Subscribe(sctx, benchTopic)) }
		})
	})
	b.Run("subscription/channels", func(b *testing.B) {
		// The baseline's subscriber: a 1,024-slot channel of []byte.
		measureHeap(b, count, "B/subscription", func(*topics.Cache) func(int) any {
			f := benchkit.Channels().New(b)
			return func(int) any { f.Stall(); return nil }
		})
	})
	b.Run("topic/topics", func(b *testing.B) {
		// A topic created by a subscription that is then closed: the topic
		// stays (until the idle timeout) with an empty ring.
		measureHeap(b, count, "B/topic", func(c *topics.Cache) func(int) any {
			return func(i int) any {
				s := must(c.Subscribe(ctx, fmt.Sprintf("topic-%04d", i)))
				_ = s.Close()
				return nil
			}
		}, topicsBeyondRing)
	})
	b.Run("topic-published/topics", func(b *testing.B) {
		measureHeap(b, count, "B/topic", func(c *topics.Cache) func(int) any {
			return func(i int) any {
				if err := c.Publish(ctx, fmt.Sprintf("topic-%04d", i), benchkit.Payload); err != nil {
					panic(err)
				}
				return nil
			}
		}, topicsBeyondRing)
	})
}

// topicsBeyondRing reports B/topic-beyond-ring from B/topic: what a topic
// costs beyond its slots (8 bytes each for the ring, 4 for the payload
// sizes the byte budget notes) and its ring's table of chunks.
func topicsBeyondRing(b *testing.B, perTopic float64) {
	perSlot := ring.New[topics.Value](topics.DefaultRingSize).Footprint() + 4*topics.DefaultRingSize
	b.ReportMetric(perTopic-float64(perSlot), "B/topic-beyond-ring")
}

// measureHeap creates count things in a fresh cache per op with the function
// that setup returns, and reports the mean live-heap growth per thing under
// unit.
func measureHeap(b *testing.B, count int, unit string, setup func(*topics.Cache) func(int) any, extra ...func(*testing.B, float64)) {
	b.ReportAllocs()
	var total float64
	keep := make([]any, count)
	for i := 0; b.Loop(); i++ {
		c, err := topics.NewCache(fmt.Sprintf("mem-%d", i))
		if err != nil {
			b.Fatal(err)
		}
		// The topic of the subscription benchmarks exists before the
		// measurement, so that it is not counted.
		if err := c.Publish(context.Background(), benchTopic, nil); err != nil {
			b.Fatal(err)
		}
		add := setup(c)
		before := liveHeap()
		for j := range keep {
			keep[j] = add(j)
		}
		after := liveHeap()
		total += (float64(after) - float64(before)) / float64(count)
		runtime.KeepAlive(add)
		clear(keep)
		_ = c.Close()
	}
	per := total / float64(b.N)
	b.ReportMetric(per, unit)
	for _, f := range extra {
		f(b, per)
	}
}

// liveHeap returns the bytes of live heap objects after full collections
// (two: the first leaves sync.Pool's victim caches and what finalizers let
// go alive).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// handoff is a bare unbuffered channel between the publisher and one
// subscriber: the floor for waking a parked goroutine.
type handoff struct {
	ch chan benchkit.Tick
	wg sync.WaitGroup
}

func newHandoff() *handoff { return &handoff{ch: make(chan benchkit.Tick)} }

func (h *handoff) Publish() { h.ch <- benchkit.Tick{Seq: 1} }

func (h *handoff) Drain(sink *benchkit.Sink) {
	h.wg.Go(func() {
		for range h.ch {
			sink.Deliver(0)
		}
	})
}

func (h *handoff) Stall() { panic("chan-handoff: a stalled subscriber would block the publisher") }

func (h *handoff) Close() {
	close(h.ch)
	h.wg.Wait()
}
