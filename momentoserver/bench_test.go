package momentoserver_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/ringbus/topics"
	"github.com/ringbus/topics/momentoserver/internal/wire"
)

// The benchmarks measure the server over TCP on 127.0.0.1, from Go gRPC
// clients, beside an embedded NATS server reached over TCP by nats.go
// clients in the same run: NATS is the reference for what one network hop
// through a mature broker costs. Both servers and their clients run in the
// benchmark's process, so -benchmem counts the allocations of both ends.
// Every message carries the same 128-byte payload.

var benchPayload = make([]byte, 128)

// startNATS starts an embedded NATS server on 127.0.0.1 and returns its
// URL; it is shut down when the benchmark ends.
func startNATS(b *testing.B) string {
	b.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		b.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats-server did not start")
	}
	b.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns.ClientURL()
}

func natsConnect(b *testing.B, url string) *nats.Conn {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

// reportLatency reports the median and the 99th percentile of lat.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkPublishToReceive: one publisher and one subscriber, one message
// in flight at a time; each op is the time from the publish call to the
// subscriber's receipt of the message.
func BenchmarkPublishToReceive(b *testing.B) {
	b.Run("system=momentoserver", func(b *testing.B) {
		h := startServer(b, harnessConfig{local: true})
		h.cache("bench")
		c := h.client("")
		r := subscribe(b, c, &wire.SubscriptionRequest{CacheName: "bench", Topic: "t"})
		v := topics.BytesValue(benchPayload)
		ctx := context.Background()
		lat := make([]time.Duration, 0, b.N)
		var m wire.SubscriptionItem
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			if err := c.Publish(ctx, "bench", "t", v); err != nil {
				b.Fatal(err)
			}
			for m.Kind != wire.KindItem {
				if err := r.st.Recv(&m); err != nil {
					b.Fatal(err)
				}
			}
			lat = append(lat, time.Since(start))
			m.Kind = wire.KindNone
		}
		b.StopTimer()
		reportLatency(b, lat)
	})
	b.Run("system=nats", func(b *testing.B) {
		nc := natsConnect(b, startNATS(b))
		sub, err := nc.SubscribeSync("bench.t")
		if err != nil {
			b.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
		lat := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			if err := nc.Publish("bench.t", benchPayload); err != nil {
				b.Fatal(err)
			}
			if _, err := sub.NextMsg(time.Minute); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		reportLatency(b, lat)
	})
}

// A streamSystem is what BenchmarkStream needs of a system: publishers that
// may run at once, and subscribers, each on a connection of its own.
type streamSystem struct {
	publishers int
	publish    func() error
	// subscribe returns a function that waits for the next message.
	subscribe func() (next func() error)
}

// window is how far the publishers may run ahead of the slowest subscriber:
// a steady stream, well inside the topic's ring (1024), so that nobody
// loses anything and the figures measure delivery, not loss.
const window = 512

// BenchmarkStream: publishers keep a steady stream flowing to n
// subscribers, each on its own connection; the figure is the messages per
// second each subscriber stream receives. Each system's publisher pipelines
// as its clients do: momentoserver's with 8 concurrent unary Publish calls
// (publish=grpc; Publish is a unary call in Momento's protocol), NATS's
// with its client's buffered, asynchronous Publish. publish=engine
// publishes into the server's engine in-process instead, so that the
// figure is what a subscription stream itself carries.
func BenchmarkStream(b *testing.B) {
	for _, n := range []int{1, 10} {
		for _, via := range []string{"grpc", "engine"} {
			b.Run(fmt.Sprintf("system=momentoserver/publish=%s/subscribers=%d", via, n), func(b *testing.B) {
				h := startServer(b, harnessConfig{local: true})
				cache := h.cache("bench")
				sys := streamSystem{subscribe: func() func() error {
					r := subscribe(b, wire.NewClient(h.dial(), ""), &wire.SubscriptionRequest{CacheName: "bench", Topic: "t"})
					var m wire.SubscriptionItem
					return func() error {
						for {
							if err := r.st.Recv(&m); err != nil {
								return err
							}
							switch m.Kind {
							case wire.KindItem:
								return nil
							case wire.KindDiscontinuity:
								return fmt.Errorf("lost items: %+v", m.Discontinuity)
							}
						}
					}
				}}
				v := topics.BytesValue(benchPayload)
				if via == "grpc" {
					pub := h.client("")
					sys.publishers = 8
					sys.publish = func() error { return pub.Publish(context.Background(), "bench", "t", v) }
				} else {
					sys.publishers = 1
					sys.publish = func() error { return cache.PublishAs(context.Background(), "t", "", v) }
				}
				benchStream(b, n, sys)
			})
		}
		b.Run(fmt.Sprintf("system=nats/subscribers=%d", n), func(b *testing.B) {
			url := startNATS(b)
			pub := natsConnect(b, url)
			benchStream(b, n, streamSystem{
				publishers: 1,
				publish:    func() error { return pub.Publish("bench.t", benchPayload) },
				subscribe: func() func() error {
					nc := natsConnect(b, url)
					sub, err := nc.SubscribeSync("bench.t")
					if err != nil {
						b.Fatal(err)
					}
					if err := sub.SetPendingLimits(-1, -1); err != nil {
						b.Fatal(err)
					}
					if err := nc.Flush(); err != nil {
						b.Fatal(err)
					}
					return func() error {
						_, err := sub.NextMsg(time.Minute)
						return err
					}
				},
			})
		})
	}
}

func benchStream(b *testing.B, n int, sys streamSystem) {
	nexts := make([]func() error, n)
	for i := range nexts {
		nexts[i] = sys.subscribe()
	}
	received := make([]atomic.Int64, n)
	var mu sync.Mutex
	progress := sync.NewCond(&mu)
	slowest := func() int64 {
		low := int64(b.N)
		for i := range received {
			low = min(low, received[i].Load())
		}
		return low
	}

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var subs sync.WaitGroup
	errs := make(chan error, n+sys.publishers)
	for i, next := range nexts {
		subs.Go(func() {
			for k := 1; k <= b.N; k++ {
				if err := next(); err != nil {
					errs <- err
					received[i].Store(int64(b.N)) // hold up no publisher
					mu.Lock()
					progress.Broadcast()
					mu.Unlock()
					return
				}
				if k%32 == 0 || k == b.N {
					received[i].Store(int64(k))
					mu.Lock()
					progress.Broadcast()
					mu.Unlock()
				}
			}
		})
	}
	var tickets atomic.Int64
	var pubs sync.WaitGroup
	for range sys.publishers {
		pubs.Go(func() {
			for {
				k := tickets.Add(1)
				if k > int64(b.N) {
					return
				}
				if k-window > slowest() {
					mu.Lock()
					for k-window > slowest() {
						progress.Wait()
					}
					mu.Unlock()
				}
				if err := sys.publish(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	pubs.Wait()
	subs.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s/stream")
}
