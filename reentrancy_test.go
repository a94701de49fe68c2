package topics_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

// finishes fails the test, with every goroutine's stack, if the functions do
// not all return within waitLimit: a deadlock shows as a failure, not as a
// test binary killed by -timeout.
func finishes(t *testing.T, fs ...func() error) {
	t.Helper()
	errs := make(chan error, len(fs))
	for _, f := range fs {
		go func() { errs <- f() }()
	}
	deadline := time.After(waitLimit)
	for range fs {
		select {
		case err := <-errs:
			require.NoError(t, err)
		case <-deadline:
			t.Fatalf("deadlock: not finished within %v; goroutines:\n%s", waitLimit, goroutines())
		}
	}
}

// A subscriber that publishes, for every item it receives, to its own topic
// and to another one: publishing from inside a read loop must neither block
// nor disturb the loop.
func TestReentrantSubscriberPublishes(t *testing.T) {
	const n = 2000
	for _, ring := range []int{1, 4, 1024} {
		t.Run("ring "+strconv.Itoa(ring), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			c := newCache(t, topics.WithRingSize(ring))
			ping := subscribe(t, c, "ping")
			pong := subscribe(t, c, "pong")
			// Also a reader of "ping" that does not publish: it sees the
			// chain that the re-entrant subscriber builds.
			watcher := subscribe(t, c, "ping")

			reentrant := func() error {
				for it, err := range ping.All(ctx) {
					if err != nil {
						return err
					}
					v, _ := strconv.Atoi(it.Value.String())
					if it.Missed != 0 || it.Sequence != uint64(v) {
						return errors.New("the re-entrant reader lost its own items")
					}
					if v == n {
						return nil
					}
					// To its own topic, then to the other.
					if err := c.PublishString(ctx, "ping", strconv.Itoa(v+1)); err != nil {
						return err
					}
					if err := c.PublishString(ctx, "pong", strconv.Itoa(v)); err != nil {
						return err
					}
				}
				return nil
			}
			readTo := func(s *topics.Subscription[topics.Value], last int) func() error {
				return func() error {
					var prev uint64
					for {
						it, err := s.Next(ctx)
						if err != nil {
							return err
						}
						if it.Sequence != prev+1+it.Missed || it.Value.String() != strconv.Itoa(int(it.Sequence)) {
							return errors.New("sequence, Missed and value disagree at " + strconv.FormatUint(it.Sequence, 10))
						}
						prev = it.Sequence
						if it.Sequence == uint64(last) {
							return nil
						}
					}
				}
			}
			publish(t, c, "ping", "1")
			finishes(t, reentrant, readTo(pong, n-1), readTo(watcher, n))
		})
	}
}

// Two subscribers that answer each other across two topics, each from
// inside its own read loop.
func TestReentrantPingPong(t *testing.T) {
	const rounds = 1000
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c := newCache(t, topics.WithRingSize(2))
	ping, err := topics.TopicOf[int](c, "ping")
	require.NoError(t, err)
	pong, err := topics.TopicOf[int](c, "pong")
	require.NoError(t, err)
	pings, err := ping.Subscribe(ctx)
	require.NoError(t, err)
	pongs, err := pong.Subscribe(ctx)
	require.NoError(t, err)

	answer := func(in *topics.Subscription[int], out *topics.Topic[int]) func() error {
		return func() error {
			defer in.Close()
			for it, err := range in.All(ctx) {
				if err != nil {
					return err
				}
				if it.Missed != 0 {
					return errors.New("a reader that keeps up lost items")
				}
				if err := out.Publish(ctx, it.Value+1); err != nil {
					return err
				}
				if it.Value >= rounds-1 {
					return nil // the other side reads this answer and ends too
				}
			}
			return nil
		}
	}
	require.NoError(t, ping.Publish(ctx, 0))
	finishes(t, answer(pings, pong), answer(pongs, ping))
}

// A publisher that holds its own mutex around Publish, and a subscriber that
// takes the same mutex for every item it receives: Publish never waits for a
// subscriber, so both finish. In the "batch" case the publisher holds the
// mutex for all its publishes, so the subscriber can only read once the
// publisher is done.
func TestReentrantPublisherHoldsSubscribersLock(t *testing.T) {
	const n = 5000
	for _, batch := range []bool{false, true} {
		name := "per publish"
		if batch {
			name = "around all publishes"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			c := newCache(t, topics.WithRingSize(8))
			s := subscribe(t, c, "t")
			var mu sync.Mutex
			var seen, missed uint64 // under mu
			publisher := func() error {
				if batch {
					mu.Lock()
					defer mu.Unlock()
				}
				for i := 1; i <= n; i++ {
					if !batch {
						mu.Lock()
					}
					err := c.PublishString(ctx, "t", strconv.Itoa(i))
					if !batch {
						mu.Unlock()
					}
					if err != nil {
						return err
					}
				}
				return nil
			}
			subscriber := func() error {
				for {
					it, err := s.Next(ctx)
					if err != nil {
						return err
					}
					mu.Lock()
					seen++
					missed += it.Missed
					mu.Unlock()
					if it.Sequence == n {
						return nil
					}
				}
			}
			finishes(t, publisher, subscriber)
			assert.Equal(t, uint64(n), seen+missed, "delivered %d + missed %d", seen, missed)
		})
	}
}

// A subscriber may close its own subscription, or its cache, from inside
// its read loop; the loop then ends with ErrClosed.
func TestReentrantCloseFromLoop(t *testing.T) {
	for _, what := range []string{"subscription", "cache"} {
		t.Run(what, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			c := newCache(t)
			s := subscribe(t, c, "t")
			publish(t, c, "t", "1")
			publish(t, c, "t", "2")
			var items int
			var end error
			finishes(t, func() error {
				for it, err := range s.All(ctx) {
					if err != nil {
						end = err
						break
					}
					items++
					if it.Sequence == 1 {
						if what == "cache" {
							c.Close()
						} else {
							s.Close()
						}
					}
				}
				return nil
			})
			assert.Equal(t, 1, items, "items read after the close")
			assert.ErrorIs(t, end, topics.ErrClosed)
		})
	}
}
