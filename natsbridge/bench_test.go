package natsbridge_test

// Benchmarks of the bridge beside plain NATS doing the same work, in the
// same run, on the same embedded three-server cluster: one process (a
// connection) per server; A publishes, B and C each have 1 or 100
// subscribers. The bridge's subscribers are topics subscriptions, fed by
// one NATS subscription per process; the baseline's are 100 core NATS
// subscriptions per process.
//
//	go test -run '^$' -bench . -benchtime 20000x -count 5 ./natsbridge
//
// FanOut: a steady stream (at most fanOutWindow items in flight): wall
// time per delivery, all subscribers of B and C together.
// Latency: one item at a time, from just before Publish to the moment a
// subscriber of B or C has it: p50 and p99.
// TopicCost: 10,000 topics (1,000 with -short) first published from A,
// then subscribed to from B: the latency of the first publish to a new
// topic, and the heap and goroutines each topic costs (the cluster's
// servers and the bridges all live in the benchmark's process).

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/natsbridge"
	"github.com/ringbus/topics/natsbridge/internal/natstest"
)

const (
	benchPayload = 64
	fanOutWindow = 512 // items a publisher may have in flight
	publishers   = 128 // concurrent Publish calls on the bridge
)

// A benchSystem publishes on A and delivers to subscribers on B and C.
type benchSystem interface {
	// subscribe starts n readers on each of B and C, for one topic. Each
	// calls got(index, sentAt, missed) for every item it reads, until it
	// has read the item of index last.
	subscribe(b *testing.B, topic string, n int, last uint64, got func(reader int, index uint64, sent int64, missed uint64)) (wait func())
	publish(ctx context.Context, topic string, payload []byte) error
	concurrency() int // publishers that may run at once
}

func BenchmarkFanOut(b *testing.B) {
	c := natstest.NewCluster(b, 3)
	for _, sys := range benchSystems(b, c) {
		for _, subs := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/subs=%d", sys.name, subs), func(b *testing.B) {
				benchFanOut(b, sys.benchSystem, subs)
			})
		}
	}
}

func BenchmarkLatency(b *testing.B) {
	c := natstest.NewCluster(b, 3)
	for _, sys := range benchSystems(b, c) {
		for _, subs := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/subs=%d", sys.name, subs), func(b *testing.B) {
				benchLatency(b, sys.benchSystem, subs)
			})
		}
	}
}

type namedSystem struct {
	name string
	benchSystem
}

func benchSystems(b *testing.B, c *natstest.Cluster) []namedSystem {
	var procs []*process
	for i := range 3 {
		procs = append(procs, newProcess(b, c, i))
	}
	var conns []*nats.Conn
	for i := range 3 {
		conns = append(conns, c.Connect(i))
	}
	js, err := jetstream.New(conns[0])
	require.NoError(b, err)
	return []namedSystem{
		{"bridge", &bridgeSystem{procs: procs}},
		{"nats", &natsSystem{conns: conns}},
		{"jetstream", &natsSystem{conns: conns, js: js}},
	}
}

var topicSeq atomic.Int64

// newTopic names a topic no run has used.
func newTopic() string { return fmt.Sprintf("bench/%d", topicSeq.Add(1)) }

func encode(buf []byte, index uint64) []byte {
	binary.LittleEndian.PutUint64(buf[0:8], uint64(time.Now().UnixNano()))
	binary.LittleEndian.PutUint64(buf[8:16], index)
	return buf
}

func decode(p []byte) (sent int64, index uint64) {
	return int64(binary.LittleEndian.Uint64(p[0:8])), binary.LittleEndian.Uint64(p[8:16])
}

// warmUp publishes index-0 items until every reader has one: subscriptions
// are in place, interest has spread through the cluster.
func warmUp(b *testing.B, sys benchSystem, topic string, ready *sync.WaitGroup) {
	done := make(chan struct{})
	go func() {
		ready.Wait()
		close(done)
	}()
	buf := make([]byte, benchPayload)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitTimeout)
	for {
		require.NoError(b, sys.publish(b.Context(), topic, encode(buf, 0)))
		select {
		case <-done:
			return
		case <-deadline:
			b.Fatal("the subscribers did not start")
		case <-tick.C:
		}
	}
}

func benchFanOut(b *testing.B, sys benchSystem, subs int) {
	topic := newTopic()
	last := uint64(b.N)
	readers := 2 * subs
	// Tokens bound the items in flight: the first reader of B and of C
	// gives one back per item it reads.
	tokens := []chan struct{}{make(chan struct{}, fanOutWindow), make(chan struct{}, fanOutWindow)}
	var ready sync.WaitGroup
	ready.Add(readers)
	started := make([]atomic.Bool, readers)
	var missed atomic.Uint64
	wait := sys.subscribe(b, topic, subs, last, func(reader int, index uint64, _ int64, m uint64) {
		if index == 0 {
			if !started[reader].Swap(true) {
				ready.Done()
			}
			return
		}
		missed.Add(m)
		if reader%subs == 0 {
			for range m + 1 {
				<-tokens[reader/subs]
			}
		}
	})
	warmUp(b, sys, topic, &ready)

	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	var next atomic.Uint64
	var pubs sync.WaitGroup
	errs := make(chan error, sys.concurrency())
	for range sys.concurrency() {
		pubs.Go(func() {
			buf := make([]byte, benchPayload)
			for {
				i := next.Add(1)
				if i > last {
					return
				}
				tokens[0] <- struct{}{}
				tokens[1] <- struct{}{}
				if err := sys.publish(b.Context(), topic, encode(buf, i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	pubs.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	wait()
	b.StopTimer()
	cpu := cpuTime() - cpu0
	deliveries := float64(b.N) * float64(readers)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
	b.ReportMetric(float64(missed.Load())/deliveries, "missed/delivery")
}

func benchLatency(b *testing.B, sys benchSystem, subs int) {
	topic := newTopic()
	last := uint64(b.N)
	readers := 2 * subs
	var ready sync.WaitGroup
	ready.Add(readers)
	started := make([]atomic.Bool, readers)
	// The first reader of B and of C measure; each item is published once
	// both have the one before.
	arrived := make(chan struct{}, 2)
	lat := [2][]time.Duration{make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)}
	wait := sys.subscribe(b, topic, subs, last, func(reader int, index uint64, sent int64, _ uint64) {
		if index == 0 {
			if !started[reader].Swap(true) {
				ready.Done()
			}
			return
		}
		if reader%subs == 0 {
			lat[reader/subs] = append(lat[reader/subs], time.Duration(time.Now().UnixNano()-sent))
			arrived <- struct{}{}
		}
	})
	warmUp(b, sys, topic, &ready)

	b.ResetTimer()
	buf := make([]byte, benchPayload)
	for i := uint64(1); i <= last; i++ {
		require.NoError(b, sys.publish(b.Context(), topic, encode(buf, i)))
		<-arrived
		<-arrived
	}
	b.StopTimer()
	wait()
	all := slices.Concat(lat[0], lat[1])
	slices.Sort(all)
	q := func(f float64) float64 { return float64(all[int(f*float64(len(all)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(q(0.5), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// bridgeSystem: topics caches on three bridges.
type bridgeSystem struct{ procs []*process }

func (s *bridgeSystem) concurrency() int { return publishers }

func (s *bridgeSystem) publish(ctx context.Context, topic string, p []byte) error {
	c, err := s.procs[0].engine.Cache("bench")
	if err != nil {
		c, err = s.procs[0].engine.CreateCache("bench")
		if err != nil {
			return err
		}
	}
	return c.Publish(ctx, topic, p)
}

func (s *bridgeSystem) subscribe(b *testing.B, topic string, n int, last uint64, got func(int, uint64, int64, uint64)) func() {
	var wg sync.WaitGroup
	for pi, p := range s.procs[1:] {
		cache := p.cache(b, "bench")
		for j := range n {
			sub := subscribe(b, cache, topic)
			reader := pi*n + j
			wg.Go(func() {
				defer sub.Close()
				for {
					it, err := sub.Next(b.Context())
					if err != nil {
						b.Error(err)
						return
					}
					sent, index := decode(it.Value.Bytes())
					got(reader, index, sent, it.Missed)
					if index == last {
						return
					}
				}
			})
		}
	}
	return wg.Wait
}

// natsSystem: one NATS subscription per subscriber. Without js, core NATS:
// what subscribers receive is what was published, unnumbered. With js, the
// topic is a JetStream stream (R1, in memory) that republishes what it
// stores, with its sequence, on the subject the subscribers subscribe to:
// the bridge's way of numbering, without the bridge's fan-out.
type natsSystem struct {
	conns []*nats.Conn
	js    jetstream.JetStream
}

func (s *natsSystem) concurrency() int {
	if s.js != nil {
		return publishers
	}
	return 1
}

func (s *natsSystem) publish(ctx context.Context, topic string, p []byte) error {
	id := topic[len("bench/"):]
	if s.js == nil {
		return s.conns[0].Publish("plain."+id, p)
	}
	_, err := s.js.Publish(ctx, "plainjs.in."+id, p)
	return err
}

func (s *natsSystem) subscribe(b *testing.B, topic string, n int, last uint64, got func(int, uint64, int64, uint64)) func() {
	id := topic[len("bench/"):]
	subject := "plain." + id
	if s.js != nil {
		subject = "plainjs.out." + id
		_, err := s.js.CreateStream(b.Context(), jetstream.StreamConfig{
			Name: "plainjs_" + id, Subjects: []string{"plainjs.in." + id}, Storage: jetstream.MemoryStorage,
			MaxMsgsPerSubject: 1024, RePublish: &jetstream.RePublish{Source: "plainjs.in." + id, Destination: subject},
		})
		require.NoError(b, err)
	}
	var wg sync.WaitGroup
	for pi, nc := range s.conns[1:] {
		for j := range n {
			reader := pi*n + j
			wg.Add(1)
			var once sync.Once
			sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
				sent, index := decode(m.Data)
				got(reader, index, sent, 0)
				if index == last {
					once.Do(wg.Done)
				}
			})
			require.NoError(b, err)
			require.NoError(b, sub.SetPendingLimits(-1, -1))
			b.Cleanup(func() { sub.Unsubscribe() })
		}
		require.NoError(b, nc.Flush())
	}
	return wg.Wait
}

// BenchmarkTopicCost: what a topic costs. Each run makes topicCount new
// topics with one publish each from A (16 at once: creations per second), then publishes once to each of firstPublishes more topics, one
// after the other (the latency of a first publish, with the others in
// place), then subscribes to the first ones from B (a feed each); it
// measures the heap and the goroutines that streams and feeds hold.
func BenchmarkTopicCost(b *testing.B) {
	count := 10_000
	if testing.Short() {
		count = 1_000
	}
	const firstPublishes = 200
	c := natstest.NewCluster(b, 3)
	// Creating thousands of streams at once keeps JetStream's meta leader
	// busy: give each creation time.
	a, sub := newProcess(b, c, 0, natsbridge.WithTimeout(time.Minute)), newProcess(b, c, 1, natsbridge.WithTimeout(time.Minute))
	for b.Loop() {
		cache := fmt.Sprintf("cost%d", topicSeq.Add(1))
		ca, cb := a.cache(b, cache), sub.cache(b, cache)
		heap0, g0 := heapInUse(), runtime.NumGoroutine()
		t0 := time.Now()
		forEach(b, count, func(i int) error { return ca.PublishString(b.Context(), fmt.Sprint("t", i), "first") })
		created := time.Since(t0)
		heap1, g1 := heapInUse(), runtime.NumGoroutine()

		lat := make([]time.Duration, firstPublishes)
		for i := range lat {
			t0 := time.Now()
			require.NoError(b, ca.PublishString(b.Context(), fmt.Sprint("more", i), "first"))
			lat[i] = time.Since(t0)
		}
		slices.Sort(lat)

		heap2, g2 := heapInUse(), runtime.NumGoroutine()
		subs := make([]*topics.Subscription[topics.Value], count)
		forEach(b, count, func(i int) (err error) {
			subs[i], err = cb.Subscribe(b.Context(), fmt.Sprint("t", i))
			return err
		})
		heap3, g3 := heapInUse(), runtime.NumGoroutine()

		b.ReportMetric(float64(count)/created.Seconds(), "creations/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "first-publish-p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "first-publish-p99-µs")
		b.ReportMetric(float64(heap1-heap0)/float64(count), "heap-B/stream")
		b.ReportMetric(float64(g1-g0)/float64(count), "goroutines/stream")
		b.ReportMetric(float64(heap3-heap2)/float64(count), "heap-B/feed")
		b.ReportMetric(float64(g3-g2)/float64(count), "goroutines/feed")
		for _, s := range subs {
			if s != nil {
				s.Close()
			}
		}
	}
}

// forEach calls f(0) … f(n-1) from creators goroutines at once.
func forEach(b *testing.B, n int, f func(i int) error) {
	const creators = 16
	var next atomic.Int64
	var wg sync.WaitGroup
	for range creators {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

// cpuTime returns the CPU time the process has used: its servers, its
// bridges and its subscribers.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
