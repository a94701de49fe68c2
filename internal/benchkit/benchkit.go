// Package benchkit drives the benchmark scenarios that topics and its peers
// are measured on, so that every implementation runs exactly the same code
// around its own publish and receive calls. It is used by the library's
// bench_test.go and by the peer comparison in internal/peerbench.
//
// An implementation is wrapped in a [System]: one topic, one publishing
// goroutine, and subscribers that either drain the topic in a goroutine of
// their own, reporting every item to a [Sink], or stall (subscribe and never
// read). The scenarios are:
//
//   - [Publish]: ns per publish with 0 subscribers, 1 draining subscriber, or
//     many stalled ones.
//   - [Fanout]: one publisher and N draining subscribers; ns per item
//     actually delivered, items missed, allocations per delivered item.
//   - [Wakeup]: publish → a parked subscriber has the item; p50 and p99.
//   - [Overload]: one publisher that is never held back and N draining
//     subscribers; deliveries per second, the publisher's ns per publish,
//     items missed.
//
// The systems both sets of benchmarks measure, topics and the
// channel-per-subscriber baseline, are here too (systems.go): [Topics],
// [Channels] and their typed and lossless variants.
//
// Nothing here asserts a timing: the figures are reported with
// b.ReportMetric and compared by people (see BENCHMARKS.md).
package benchkit

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringbus/topics"
)

// A System is one pub/sub implementation with one topic, set up for a
// benchmark. Publish is called from one goroutine at a time. Drain and Stall
// are called before the measurement starts.
type System interface {
	// Publish publishes one item to the topic.
	Publish()
	// Drain adds a subscriber that receives every item in a goroutine of
	// its own and reports each to sink.Deliver, with the number of items it
	// learnt it missed just before it. A system that drops items on the
	// publishing side without telling the subscriber reports those with
	// sink.Dropped. The subscription is in place when Drain returns.
	Drain(sink *Sink)
	// Stall adds a subscriber that never receives anything.
	Stall()
	// Close ends every subscription and returns once no goroutine started
	// by Drain will call its sink again.
	Close()
}

// A Flusher is a System whose Publish may return before the system has taken
// the item (it buffers). Flush returns once everything published is taken;
// the publish scenario calls it before it stops the clock.
type Flusher interface {
	Flush()
}

// A Spec names a System and says how the scenarios may use it.
type Spec struct {
	Name string
	New  func(tb testing.TB) System
	// NoStall, when not empty, says why the scenario with stalled
	// subscribers is not run: for example a stalled subscriber would block
	// the publisher for good, or every publish would leave work behind for
	// it without bound.
	NoStall string
	// RebuildEvery, when positive, says that the system queues without a
	// bound for a subscriber that does not keep up (for example a goroutine
	// per message per subscriber). The publish scenario with a draining
	// subscriber then rebuilds it every RebuildEvery publishes, with the
	// timer stopped, so that a long run does not exhaust memory. Zero means
	// never.
	RebuildEvery int
	// Lossless says that the system never loses an item: it blocks the
	// publisher, or buffers, rather than drop. The fan-out scenario then
	// fails the benchmark if any subscriber missed an item or had one
	// dropped, because that is a bug in the system, not a figure to report.
	Lossless bool
}

// Batch and Window shape the steady stream of the fan-out scenario: the
// publisher publishes Batch items at a time and never has more than Window
// batches that some subscriber has not finished. A subscriber is therefore
// never more than Batch*Window = 256 items behind, a quarter of the default
// ring of topics (1,024) and of the 1,024-item buffers the peers are given,
// so no implementation has a reason to drop: a miss in the fan-out results
// means something is wrong, not that the publisher raced ahead.
const (
	Batch  = 128
	Window = 2
)

// SmallRing is the ring (or buffer) size of the lossless fan-out runs that
// make publishers wait: a quarter of Batch*Window, so the publisher fills a
// lossless subscriber's ring well before the harness would hold it back, and
// from then on publishes only as fast as the slowest subscriber reads.
const SmallRing = 64

// The cases of the scenarios, shared by the library's benchmarks and the
// peer comparison so that both run (and name) exactly the same ones.
var (
	// PublishCases are the publish scenario's subscriber mixes.
	PublishCases = []PublishCase{
		{Name: "subs=0"},
		{Name: "subs=1", Draining: 1},
		{Name: "stalled=1000", Stalled: 1000},
	}
	// FanoutSubs are the subscriber counts of the fan-out scenario.
	FanoutSubs = []int{1, 10, 100, 1000}
	// LosslessSubs are the subscriber counts of the lossless fan-out.
	LosslessSubs = []int{1, 10, 100}
	// LosslessRings are the ring (or buffer) sizes of the lossless fan-out:
	// the default, which the harness never fills, and SmallRing.
	LosslessRings = []int{topics.DefaultRingSize, SmallRing}
)

// A PublishCase is one mix of subscribers for the publish scenario.
type PublishCase struct {
	Name              string
	Draining, Stalled int
}

// stuckAfter is how long the fan-out scenario waits for the slowest
// subscriber before it fails: a bound for failure, never a delay.
const stuckAfter = 30 * time.Second

// cacheLine pads counters written by different goroutines apart.
const cacheLine = 64

// A Sink counts what one draining subscriber receives. Deliver is called by
// that subscriber's goroutine only.
type Sink struct {
	_ [cacheLine]byte

	// Owned by the subscriber's goroutine; read after System.Close.
	delivered uint64
	missed    uint64
	seen      uint64 // delivered + missed
	next      uint64 // seen at which the current batch is finished
	batch     uint64 // index of the current batch
	run       *run

	_ [cacheLine]byte
	// Counted by the publishing side, for systems that drop there.
	dropped atomic.Uint64
	_       [cacheLine - 8]byte
}

// Deliver records one received item, after missed items that the
// subscriber was told it lost.
func (s *Sink) Deliver(missed uint64) {
	s.delivered++
	s.missed += missed
	s.seen += 1 + missed
	if s.seen >= s.next {
		s.arrive()
	}
}

// Dropped records n items that the publishing side dropped for this
// subscriber without telling it. It may be called from any goroutine.
func (s *Sink) Dropped(n uint64) { s.dropped.Add(n) }

// arrive moves the sink past the batches it has finished, and tells the
// publisher when it is the last subscriber to finish one.
func (s *Sink) arrive() {
	r := s.run
	if r == nil {
		s.next = math.MaxUint64
		return
	}
	for s.seen >= s.next {
		if r.lat != nil {
			r.lat.record(s.batch)
		}
		b := &r.slots[s.batch%Window]
		if b.remaining.Add(-1) == 0 {
			b.done <- struct{}{}
		}
		s.batch++
		s.next = r.end(s.batch)
	}
}

// A run is the shared state of one measured run of a batched scenario.
type run struct {
	batch uint64 // items per batch
	total uint64 // items published in all
	slots [Window]barrier
	lat   *latency // wake-up samples, or nil
	timer *time.Timer
}

type barrier struct {
	_ [cacheLine]byte
	// remaining counts the subscribers yet to finish the batch that uses
	// this slot; the last one sends on done.
	remaining atomic.Int64
	done      chan struct{}
}

func newRun(batch, total uint64) *run {
	r := &run{batch: batch, total: total, timer: time.NewTimer(stuckAfter)}
	for i := range r.slots {
		r.slots[i].done = make(chan struct{}, 1)
	}
	return r
}

// end returns the sequence count at which batch k ends, or MaxUint64 past
// the last batch.
func (r *run) end(k uint64) uint64 {
	if k*r.batch >= r.total {
		return math.MaxUint64
	}
	return min((k+1)*r.batch, r.total)
}

func (r *run) batches() uint64 { return (r.total + r.batch - 1) / r.batch }

// attach prepares a sink for this run.
func (r *run) attach(s *Sink) {
	s.run = r
	s.next = r.end(0)
}

// drainers starts n subscribers of sys for this run, each draining into a
// sink of its own, and returns the sinks.
func (r *run) drainers(sys System, n int) []*Sink {
	sinks := make([]*Sink, n)
	for i := range sinks {
		sinks[i] = &Sink{}
		r.attach(sinks[i])
		sys.Drain(sinks[i])
	}
	return sinks
}

// totals sums what sinks received, and what they missed or had dropped.
func totals(sinks []*Sink) (delivered, missed uint64) {
	for _, s := range sinks {
		delivered += s.delivered
		missed += s.missed + s.dropped.Load()
	}
	return delivered, missed
}

// open arms the slot of batch k for n subscribers. It is called before the
// first item of batch k is published, so no subscriber can finish batch k
// before.
func (r *run) open(k uint64, n int) { r.slots[k%Window].remaining.Store(int64(n)) }

// wait blocks until every subscriber has finished batch k.
func (r *run) wait(tb testing.TB, k uint64, sinks []*Sink) {
	r.timer.Reset(stuckAfter)
	select {
	case <-r.slots[k%Window].done:
	case <-r.timer.C:
		var dropped uint64
		for _, s := range sinks {
			dropped += s.dropped.Load()
		}
		tb.Fatalf("batch %d of %d not received by %d of %d subscribers after %v (%d items dropped by the publishing side; the harness assumes a window of %d items fits every buffer)",
			k, r.batches(), r.slots[k%Window].remaining.Load(), len(sinks), stuckAfter, dropped, Batch*Window)
	}
}

// Payload is the byte payload every byte-carrying system publishes.
var Payload = []byte("0123456789abcdef") // 16 bytes

// Publish measures publishing with draining subscribers that receive in
// their own goroutines and stalled ones that never read. ns/publish is the
// publisher's time per publish; it does not wait for the subscribers.
func Publish(b *testing.B, spec Spec, draining, stalled int) {
	setup := func() System {
		sys := spec.New(b)
		for range draining {
			sys.Drain(&Sink{next: math.MaxUint64})
		}
		for range stalled {
			sys.Stall()
		}
		return sys
	}
	sys := setup()
	b.ReportAllocs()
	b.ResetTimer()
	rebuild := spec.RebuildEvery > 0 && draining+stalled > 0
	for i := range b.N {
		if rebuild && i > 0 && i%spec.RebuildEvery == 0 {
			b.StopTimer()
			sys.Close()
			sys = setup()
			b.StartTimer()
		}
		sys.Publish()
	}
	if f, ok := sys.(Flusher); ok {
		f.Flush()
	}
	b.StopTimer()
	elapsed := b.Elapsed()
	sys.Close()
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N), "ns/publish")
}

// Fanout measures one publisher and subs subscribers, each draining the
// topic in its own goroutine, as a steady stream: the publisher publishes
// Batch items, then, before each further batch, waits until every
// subscriber has received (or been told it missed) everything up to the end
// of the batch published Window batches earlier. So the publisher and the
// subscribers overlap, but the publisher never outruns the slowest
// subscriber by more than Batch*Window items, and the run measures what it
// costs to get every item to every subscriber rather than how fast a
// publisher can drop items.
//
// b.N is the number of items published. Reported:
//   - ns/delivery: elapsed time / items actually delivered, summed over the
//     subscribers (a missed item is never counted as delivered);
//   - missed/op: items missed or dropped per publish, summed over the
//     subscribers (0 is expected; for a Lossless spec anything else fails
//     the benchmark);
//   - allocs/delivery: heap allocations in the whole process during the
//     run / items delivered.
func Fanout(b *testing.B, spec Spec, subs int) {
	sys := spec.New(b)
	r := newRun(Batch, uint64(b.N))
	sinks := r.drainers(sys, subs)
	var before, after runtime.MemStats
	b.ReportAllocs()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	stream(b, sys, r, sinks)
	b.StopTimer()
	elapsed := b.Elapsed()
	runtime.ReadMemStats(&after)
	sys.Close()
	r.timer.Stop()

	delivered, missed := totals(sinks)
	if delivered == 0 {
		b.Fatalf("no item delivered to %d subscribers", subs)
	}
	if spec.Lossless && missed > 0 {
		b.Fatalf("%s is lossless, yet its %d subscribers missed %d of %d items (%d delivered): a bug in the system",
			spec.Name, subs, missed, uint64(subs)*uint64(b.N), delivered)
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(delivered), "ns/delivery")
	b.ReportMetric(float64(missed)/float64(b.N), "missed/op")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(delivered), "allocs/delivery")
}

// Overload measures one publisher that publishes b.N items as fast as it
// can, never held back by the harness, to subs subscribers each draining in
// its own goroutine: a system that drops loses what its subscribers cannot
// keep up with, one that blocks makes the publisher wait. The clock stops
// once every subscriber has received, or been told it missed, every item, so
// only systems whose subscribers learn of every item (they drop and say so,
// or never drop) can run it.
//
// Reported:
//   - deliveries/s: items actually delivered, summed over the subscribers,
//     per second of the run;
//   - ns/publish: the publisher's own time per publish, until its last
//     publish returned;
//   - missed/op: items missed per publish, summed over the subscribers.
func Overload(b *testing.B, spec Spec, subs int) {
	sys := spec.New(b)
	total := uint64(b.N)
	r := newRun(total, total)
	sinks := r.drainers(sys, subs)
	b.ReportAllocs()
	b.ResetTimer()
	r.open(0, subs)
	start := time.Now()
	for range total {
		sys.Publish()
	}
	published := time.Since(start)
	r.wait(b, 0, sinks)
	b.StopTimer()
	elapsed := b.Elapsed()
	sys.Close()
	r.timer.Stop()

	delivered, missed := totals(sinks)
	if spec.Lossless && missed > 0 {
		b.Fatalf("%s is lossless, yet its %d subscribers missed %d items", spec.Name, subs, missed)
	}
	b.ReportMetric(float64(delivered)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(published.Nanoseconds())/float64(total), "ns/publish")
	b.ReportMetric(float64(missed)/float64(total), "missed/op")
}

// stream publishes r.total items in batches, never more than Window
// batches ahead of the slowest sink, and returns once every sink has
// received (or missed) them all.
func stream(tb testing.TB, sys System, r *run, sinks []*Sink) {
	published := uint64(0)
	for k := range r.batches() {
		if k >= Window {
			r.wait(tb, k-Window, sinks)
		}
		r.open(k, len(sinks))
		for end := min(published+Batch, r.total); published < end; published++ {
			sys.Publish()
		}
	}
	for k := r.batches() - min(r.batches(), Window); k < r.batches(); k++ {
		r.wait(tb, k, sinks)
	}
}

// Check is a test of a System: it streams items to subs draining
// subscribers, as the fan-out scenario does, and fails unless each received
// every item, none missed or dropped, and Close returned.
func Check(t *testing.T, spec Spec, subs int) {
	const total = 5*Batch + 7
	sys := spec.New(t)
	r := newRun(Batch, total)
	defer r.timer.Stop()
	sinks := r.drainers(sys, subs)
	stream(t, sys, r, sinks)
	sys.Close()
	for i, s := range sinks {
		if s.delivered != total || s.missed != 0 || s.dropped.Load() != 0 {
			t.Errorf("%s: subscriber %d received %d of %d items, missed %d, %d dropped at the publisher",
				spec.Name, i, s.delivered, total, s.missed, s.dropped.Load())
		}
	}
}

// WakeupGap is how long the wake-up scenario leaves the subscriber parked
// before each sample. The publisher spins through the gap (time.Sleep
// oversleeps by up to a millisecond, which would leave few samples), so
// each sample measures a publisher that is running and a subscriber
// goroutine that is parked, as it is between items in a real program: what
// is measured is the implementation's cost of waking it plus Go's cost of
// switching to it, not the operating system's cost of waking an idle
// thread. The gap is outside the measured interval.
const WakeupGap = 10 * time.Microsecond

// latency holds the samples of a wake-up run.
type latency struct {
	base    time.Time
	t0      atomic.Int64 // publish time of the current sample, since base
	samples []time.Duration
}

func (l *latency) record(k uint64) {
	l.samples[k] = time.Since(l.base) - time.Duration(l.t0.Load())
}

// Wakeup measures the time from just before a publish to the moment the
// one subscriber, parked waiting, has the item in hand (its Deliver call).
// Each of the b.N samples waits WakeupGap first, then publishes one item
// and waits for it to arrive. Reported: p50-ns and p99-ns over the samples.
// ns/op is the whole cycle, gap included, and means little here.
func Wakeup(b *testing.B, spec Spec) {
	sys := spec.New(b)
	r := newRun(1, uint64(b.N))
	r.lat = &latency{base: time.Now(), samples: make([]time.Duration, b.N)}
	sink := &Sink{}
	r.attach(sink)
	sys.Drain(sink)
	sinks := []*Sink{sink}
	b.ReportAllocs()
	b.ResetTimer()
	for k := range uint64(b.N) {
		for t := time.Now(); time.Since(t) < WakeupGap; {
		}
		r.open(k, 1)
		r.lat.t0.Store(int64(time.Since(r.lat.base)))
		sys.Publish()
		r.wait(b, k, sinks)
	}
	b.StopTimer()
	sys.Close()
	r.timer.Stop()
	if sink.missed+sink.dropped.Load() != 0 {
		b.Fatalf("the subscriber missed %d items", sink.missed+sink.dropped.Load())
	}
	s := r.lat.samples
	slices.Sort(s)
	b.ReportMetric(float64(percentile(s, 50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(percentile(s, 99).Nanoseconds()), "p99-ns")
}

// percentile returns the p-th percentile of sorted samples (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100 // ceil(n*p/100), 1-based
	return sorted[max(i, 1)-1]
}

// Name formats a sub-benchmark name part, such as "subs=100".
func Name(key string, n int) string { return fmt.Sprintf("%s=%d", key, n) }
