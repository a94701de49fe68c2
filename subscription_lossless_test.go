package topics_test

import (
	"context"
	"encoding/binary"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

// waitingPublishers counts goroutines whose Publish waits for a lossless
// subscription.
func waitingPublishers() int {
	n := 0
	for _, g := range strings.Split(goroutines(), "\n\n") {
		if strings.Contains(g, "[select") && strings.Contains(g, ").claimGated(") {
			n++
		}
	}
	return n
}

// waitPublishersBlocked polls until n publishers wait, or fails at waitLimit.
func waitPublishersBlocked(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for waitingPublishers() < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d publishers waiting after %v", n, waitLimit)
		}
		<-time.After(time.Millisecond)
	}
}

// publishAsync publishes in a new goroutine and reports the error.
func publishAsync(ctx context.Context, c *topics.Cache, topic, v string) <-chan error {
	done := make(chan error, 1)
	go func() { done <- c.PublishString(ctx, topic, v) }()
	return done
}

func awaitErr(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(waitLimit):
		t.Fatalf("publish still waiting after %v", waitLimit)
		return nil
	}
}

// A slow lossless subscriber with fast publishers and a tiny ring receives
// every item, in one order, with each publisher's order kept; a lossy
// subscriber of the same topic loses items and is told exactly how many.
func TestLosslessNoLossWithSlowReader(t *testing.T) {
	const publishers, perPub, ring = 4, 3000, 8
	c := newCache(t, topics.WithRingSize(ring))
	ctx := context.Background()
	lossless := subscribe(t, c, "events", topics.Lossless())
	lossy := subscribe(t, c, "events")

	total := uint64(publishers * perPub)
	var wg sync.WaitGroup
	type tally struct{ delivered, missed uint64 }
	results := make([]tally, 2)
	for i, s := range []*topics.Subscription[topics.Value]{lossless, lossy} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := make([]uint32, publishers)
			want := uint64(1)
			for want <= total {
				it, err := s.Next(ctx)
				if !assert.NoError(t, err) {
					return
				}
				b := it.Value.Bytes()
				p, n := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
				assert.Greater(t, n, last[p], "publisher %d out of order", p)
				last[p] = n
				if i == 0 {
					assert.Equal(t, want, it.Sequence, "lossless reader skipped")
					assert.Zero(t, it.Missed)
					if it.Sequence%5 == 0 {
						runtime.Gosched() // slow
					}
				} else {
					assert.Equal(t, want+it.Missed, it.Sequence, "Missed does not account for the gap")
				}
				results[i].delivered++
				results[i].missed += it.Missed
				want = it.Sequence + 1
			}
		}()
	}
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 8)
			for n := 1; n <= perPub; n++ {
				binary.BigEndian.PutUint32(buf, uint32(p))
				binary.BigEndian.PutUint32(buf[4:], uint32(n))
				assert.NoError(t, c.Publish(ctx, "events", buf))
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, tally{total, 0}, results[0])
	assert.Equal(t, total, results[1].delivered+results[1].missed)
}

func TestLosslessPublisherWaitsAndHonoursContext(t *testing.T) {
	c := newCache(t, topics.WithRingSize(2))
	s := subscribe(t, c, "t", topics.Lossless())
	publish(t, c, "t", "1")
	publish(t, c, "t", "2") // the ring is now full of unread items

	ctx, cancel := context.WithCancel(context.Background())
	done := publishAsync(ctx, c, "t", "refused")
	waitPublishersBlocked(t, 1)
	cancel()
	require.ErrorIs(t, awaitErr(t, done), context.Canceled)

	// Nothing was published: the reader sees 1, 2, then the next publish as 3.
	assert.Equal(t, "1", next(t, s).Value.String())
	assert.Equal(t, "2", next(t, s).Value.String())
	publish(t, c, "t", "3")
	it := next(t, s)
	assert.Equal(t, uint64(3), it.Sequence)
	assert.Equal(t, "3", it.Value.String())
}

func TestLosslessReadReleasesPublisher(t *testing.T) {
	c := newCache(t, topics.WithRingSize(2))
	s := subscribe(t, c, "t", topics.Lossless())
	publish(t, c, "t", "1")
	publish(t, c, "t", "2")
	done := publishAsync(context.Background(), c, "t", "3")
	waitPublishersBlocked(t, 1)
	assert.Equal(t, "1", next(t, s).Value.String())
	require.NoError(t, awaitErr(t, done))
	assert.Equal(t, "2", next(t, s).Value.String())
	assert.Equal(t, "3", next(t, s).Value.String())
}

// Every way a lossless subscription can end releases a waiting publisher
// at once.
func TestLosslessEndReleasesPublisher(t *testing.T) {
	ends := map[string]func(*topics.Engine, *topics.Cache, *topics.Subscription[topics.Value], context.CancelFunc){
		"Subscription.Close": func(_ *topics.Engine, _ *topics.Cache, s *topics.Subscription[topics.Value], _ context.CancelFunc) {
			s.Close()
		},
		"Subscribe context": func(_ *topics.Engine, _ *topics.Cache, _ *topics.Subscription[topics.Value], cancel context.CancelFunc) {
			cancel()
		},
		"Cache.Close": func(_ *topics.Engine, c *topics.Cache, _ *topics.Subscription[topics.Value], _ context.CancelFunc) {
			c.Close()
		},
		"Engine.DeleteCache": func(e *topics.Engine, c *topics.Cache, _ *topics.Subscription[topics.Value], _ context.CancelFunc) {
			e.DeleteCache(c.Name())
		},
		"Engine.Close": func(e *topics.Engine, _ *topics.Cache, _ *topics.Subscription[topics.Value], _ context.CancelFunc) {
			e.Close()
		},
	}
	for name, end := range ends {
		t.Run(name, func(t *testing.T) {
			e := topics.New(topics.WithRingSize(1))
			defer e.Close()
			c, err := e.CreateCache("c")
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := c.Subscribe(ctx, "t", topics.Lossless())
			require.NoError(t, err)
			defer s.Close()
			publish(t, c, "t", "1")
			done := publishAsync(context.Background(), c, "t", "2")
			waitPublishersBlocked(t, 1)
			end(e, c, s, cancel)
			// Released: it published, or found the cache closed.
			if err := awaitErr(t, done); err != nil {
				require.ErrorIs(t, err, topics.ErrClosed)
			}
		})
	}
}

// Lossy subscribers of a topic with a lossless one are not slowed: a lossy
// subscriber that never reads does not hold publishers back.
func TestLossyReaderNeverGates(t *testing.T) {
	c := newCache(t, topics.WithRingSize(4))
	subscribe(t, c, "t") // never reads
	fast := subscribe(t, c, "t", topics.Lossless())
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for i := range 100 {
		require.NoError(t, c.PublishString(ctx, "t", "x"))
		it := next(t, fast)
		require.Equal(t, uint64(i+1), it.Sequence)
	}
}

// The rule that prevents a self-deadlock: a lossless reader that publishes
// to its own topic with a deadline gets DeadlineExceeded when the ring is
// full of items it has not read, instead of waiting forever.
func TestLosslessSelfPublishWithDeadline(t *testing.T) {
	c := newCache(t, topics.WithRingSize(2))
	s := subscribe(t, c, "t", topics.Lossless())
	publish(t, c, "t", "1")
	publish(t, c, "t", "2")
	it := next(t, s) // read 1: one free slot
	require.Equal(t, uint64(1), it.Sequence)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.NoError(t, c.PublishString(ctx, "t", "3"), "a free slot: the publish goes through")
	err := c.PublishString(ctx, "t", "4") // full of 2 and 3, which this goroutine has not read
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, uint64(2), next(t, s).Sequence)
	assert.Equal(t, uint64(3), next(t, s).Sequence)
}

// A lossless subscription resuming before the oldest held item is told what
// it missed, and loses nothing from there on.
func TestLosslessResume(t *testing.T) {
	c := newCache(t, topics.WithRingSize(4))
	first := subscribe(t, c, "t")
	for range 10 {
		publish(t, c, "t", "x")
	}
	it := next(t, first)
	page := it.Page
	s := subscribe(t, c, "t", topics.Lossless(), topics.ResumeAt(page, 2))
	it = next(t, s)
	assert.Equal(t, uint64(7), it.Sequence)
	assert.Equal(t, uint64(5), it.Missed)
	for i := 11; i <= 30; i++ {
		done := publishAsync(context.Background(), c, "t", "y")
		got := next(t, s)
		require.NoError(t, awaitErr(t, done))
		require.Zero(t, got.Missed)
	}
}

// Typed topics take Lossless too.
func TestLosslessTyped(t *testing.T) {
	c := newCache(t, topics.WithRingSize(1))
	tp, err := topics.TopicOf[int](c, "n")
	require.NoError(t, err)
	s, err := tp.Subscribe(context.Background(), topics.Lossless())
	require.NoError(t, err)
	defer s.Close()
	go func() {
		for i := 1; i <= 500; i++ {
			if err := tp.Publish(context.Background(), i); err != nil {
				return
			}
		}
	}()
	for i := 1; i <= 500; i++ {
		it := next(t, s)
		require.Equal(t, i, it.Value)
		require.Zero(t, it.Missed)
	}
}

// TestLosslessNeverReportsLoss: a lossless subscription whose end races with
// its reading delivers or ends, and never reports a loss. (Its gate goes
// with its end, so publishers may lap it while it reads: a read that does
// not check for the end reports Missed > 0 in about 1 of 300 rounds with
// Close and 4 of 300 with DeleteCache.)
func TestLosslessNeverReportsLoss(t *testing.T) {
	for _, end := range []string{"Close", "DeleteCache"} {
		t.Run(end, func(t *testing.T) {
			e := topics.New(topics.WithRingSize(2))
			defer e.Close()
			rounds := 1000
			if raceEnabled {
				rounds = 200
			}
			for round := range rounds {
				c, err := e.CreateCache("c")
				require.NoError(t, err)
				s := subscribe(t, c, "t", topics.Lossless())
				stop := make(chan struct{})
				var wg sync.WaitGroup
				for range 2 {
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							if c.PublishString(context.Background(), "t", "x") != nil {
								return
							}
						}
					})
				}
				wg.Go(func() {
					// Yielding makes the end come at a varying point of
					// the reading. With one P it could wait for good: the
					// reader and the publishers it wakes keep the CPU.
					if runtime.GOMAXPROCS(0) > 1 {
						for range 50 {
							runtime.Gosched()
						}
					}
					if end == "Close" {
						s.Close()
					} else {
						e.DeleteCache("c")
					}
				})
				buf := make([]topics.Item[topics.Value], 3)
				for i := 0; ; i++ {
					var items []topics.Item[topics.Value]
					if i%2 == 0 {
						it, err := s.Next(context.Background())
						if err != nil {
							break
						}
						items = []topics.Item[topics.Value]{it}
					} else {
						n, err := s.NextBatch(context.Background(), buf)
						if err != nil {
							break
						}
						items = buf[:n]
					}
					for _, it := range items {
						require.Zero(t, it.Missed, "round %d: item %d", round, it.Sequence)
					}
				}
				close(stop)
				wg.Wait()
				e.DeleteCache("c")
			}
		})
	}
}

// TestLosslessDroppedReleasesPublishers: a lossless subscription dropped
// without Close stops holding up publishers once the garbage collector has
// found it unreachable.
func TestLosslessDroppedReleasesPublishers(t *testing.T) {
	c := newCache(t, topics.WithRingSize(2))
	func() {
		s, err := c.Subscribe(context.Background(), "t", topics.Lossless())
		require.NoError(t, err)
		publish(t, c, "t", "read")
		_, err = s.Next(context.Background())
		require.NoError(t, err)
		// A Next that gives up while parked leaves nothing behind either.
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		_, err = s.Next(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}() // dropped here, never closed
	publish(t, c, "t", "a")
	publish(t, c, "t", "b")
	done := publishAsync(context.Background(), c, "t", "held back") // the ring of 2 is full
	deadline := time.Now().Add(waitLimit)
	for {
		runtime.GC()
		select {
		case err := <-done:
			require.NoError(t, err)
			st, _ := c.TopicStats("t")
			assert.Equal(t, 0, st.Subscribers)
			assert.NoError(t, c.PublishString(context.Background(), "t", "free"))
			return
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the publisher is still held back by a dropped subscription after %v", waitLimit)
		}
	}
}

// TestLosslessHeldBackError: a publish that gives up waiting for a lossless
// reader says why, and the episode is logged once.
func TestLosslessHeldBackError(t *testing.T) {
	logs := &logCapture{}
	c := newCache(t, topics.WithRingSize(2), topics.WithLogger(logs.logger()))
	s := subscribe(t, c, "t", topics.Lossless())
	s2 := subscribe(t, c, "t", topics.Lossless())
	subscribe(t, c, "t") // lossy: holds nothing back
	publish(t, c, "t", "a")
	publish(t, c, "t", "b")
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		err := c.PublishString(ctx, "t", "c")
		cancel()
		require.ErrorIs(t, err, topics.ErrHeldBack)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), `topic "t" of cache "test-cache"`)
		assert.Contains(t, err.Error(), "2 lossless subscriptions")
	}
	recs := logs.find("topics: publisher held back by lossless subscribers")
	require.Len(t, recs, 1, "once per episode")
	assert.Equal(t, "2", recs[0].attrs["lossless_behind"])

	// A publish that goes through ends the episode; the next one logs again.
	next(t, s)
	require.NoError(t, s2.Close())
	publish(t, c, "t", "c")
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	require.ErrorIs(t, c.PublishString(ctx, "t", "d"), topics.ErrHeldBack)
	assert.Len(t, logs.find("topics: publisher held back by lossless subscribers"), 2)
}
