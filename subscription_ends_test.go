package topics_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ringbus/topics"
)

// endFixture is an engine with cache "c" and three subscriptions made with
// one cancellable context: two on topic "t", one on topic "u".
type endFixture struct {
	e      *topics.Engine
	c      *topics.Cache
	cancel context.CancelFunc
	subs   []*topics.Subscription[topics.Value]
}

func newEndFixture(t *testing.T) *endFixture {
	t.Helper()
	e := topics.New()
	t.Cleanup(func() { _ = e.Close() })
	c, err := e.CreateCache("c")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &endFixture{e: e, c: c, cancel: cancel}
	for _, topic := range []string{"t", "t", "u"} {
		s, err := c.Subscribe(ctx, topic)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		f.subs = append(f.subs, s)
	}
	return f
}

type endWay struct {
	desc    string
	trigger func(t *testing.T, f *endFixture)
	wraps   []error
	// sync: the end is in place when trigger returns (not so for a
	// context, whose end is noticed asynchronously).
	sync bool
}

var endWays = []endWay{
	{"Subscription.Close", func(t *testing.T, f *endFixture) {
		for _, s := range f.subs {
			require.NoError(t, s.Close())
		}
	}, []error{topics.ErrClosed}, true},
	{"Cache.Close", func(t *testing.T, f *endFixture) {
		require.NoError(t, f.c.Close())
	}, []error{topics.ErrClosed}, true},
	{"Engine.Close", func(t *testing.T, f *endFixture) {
		require.NoError(t, f.e.Close())
	}, []error{topics.ErrClosed}, true},
	{"Engine.DeleteCache", func(t *testing.T, f *endFixture) {
		require.NoError(t, f.e.DeleteCache("c"))
	}, []error{topics.ErrCacheNotFound}, true},
	{"Subscribe context cancelled", func(t *testing.T, f *endFixture) {
		f.cancel()
	}, []error{topics.ErrClosed, context.Canceled}, false},
}

func requireEnded(t *testing.T, err error, wraps []error) {
	t.Helper()
	require.Error(t, err)
	for _, want := range wraps {
		require.ErrorIs(t, err, want)
	}
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "ended by the end, not by the test's deadline")
}

// nextErr calls Next, which must return an error within waitLimit.
func TestEndsNextAfterEnd(t *testing.T) {
	for _, way := range endWays {
		t.Run(way.desc, func(t *testing.T) {
			f := newEndFixture(t)
			way.trigger(t, f)
			for _, s := range f.subs {
				requireEnded(t, nextErr(t, s), way.wraps)
				requireEnded(t, nextErr(t, s), way.wraps) // and stays ended
			}
		})
	}
}

func TestEndsWinOverUnreadItems(t *testing.T) {
	for _, way := range endWays {
		if !way.sync {
			continue
		}
		t.Run(way.desc, func(t *testing.T) {
			f := newEndFixture(t)
			publish(t, f.c, "t", "unread")
			publish(t, f.c, "u", "unread")
			way.trigger(t, f)
			for _, s := range f.subs {
				requireEnded(t, nextErr(t, s), way.wraps)
			}
		})
	}
}

func TestEndsWakeParkedNext(t *testing.T) {
	for _, way := range endWays {
		t.Run(way.desc, func(t *testing.T) {
			f := newEndFixture(t)
			var chans []<-chan result[topics.Value]
			for _, s := range f.subs {
				chans = append(chans, nextAsync(context.Background(), s))
			}
			waitParked(t, len(f.subs))
			for _, ch := range chans {
				requirePending(t, ch)
			}
			way.trigger(t, f)
			for i, ch := range chans {
				r := await(t, ch)
				requireEnded(t, r.Err, way.wraps)
				assert.Equal(t, topics.Item[topics.Value]{}, r.Item, "subscription %d", i)
			}
		})
	}
}

func TestEndsSubscribeContextCause(t *testing.T) {
	cause := errors.New("client went away")
	c := newCache(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	s, err := c.Subscribe(ctx, "t")
	require.NoError(t, err)
	defer s.Close()
	ch := nextAsync(context.Background(), s)
	waitParked(t, 1)
	requirePending(t, ch)
	cancel(cause)
	r := await(t, ch)
	require.ErrorIs(t, r.Err, topics.ErrClosed)
	require.ErrorIs(t, r.Err, cause)
}

func TestEndsSubscribeContextDeadline(t *testing.T) {
	c := newCache(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	s, err := c.Subscribe(ctx, "t")
	require.NoError(t, err)
	defer s.Close()
	r := await(t, nextAsync(context.Background(), s))
	require.ErrorIs(t, r.Err, topics.ErrClosed)
	require.ErrorIs(t, r.Err, context.DeadlineExceeded)
}

func TestEndsSubscribeContextAlreadyDone(t *testing.T) {
	c := newCache(t, topics.WithMaxSubscribers(1), topics.WithMaxTopics(1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := c.Subscribe(ctx, "t")
	require.ErrorIs(t, err, context.Canceled)
	assert.Nil(t, s)
	// Nothing was left behind: neither a subscriber slot nor a topic.
	subscribe(t, c, "other")
}

// TestNextOwnContext checks that a Next whose own context ends returns exactly
// ctx.Err(), and that the subscription keeps working afterwards.
func TestNextOwnContext(t *testing.T) {
	cases := []struct {
		desc   string
		ctx    func() (context.Context, context.CancelFunc)
		parked bool
		want   error
	}{
		{"cancelled before Next", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, false, context.Canceled},
		{"deadline passed before Next", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		}, false, context.DeadlineExceeded},
		{"cancelled while parked", func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, true, context.Canceled},
		{"deadline while waiting", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 30*time.Millisecond)
		}, false, context.DeadlineExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			c := newCache(t)
			s := subscribe(t, c, "t")
			for round := uint64(1); round <= 3; round++ {
				ctx, cancel := tc.ctx()
				ch := nextAsync(ctx, s)
				if tc.parked {
					waitParked(t, 1)
					requirePending(t, ch)
					cancel()
				}
				r := await(t, ch)
				cancel()
				require.Equal(t, ctx.Err(), r.Err, "Next returns ctx.Err() itself")
				require.ErrorIs(t, r.Err, tc.want)
				require.NotErrorIs(t, r.Err, topics.ErrClosed, "the subscription stays open")

				// Still usable: an item published now is delivered...
				publish(t, c, "t", "x")
				it := next(t, s)
				require.Equal(t, 2*round-1, it.Sequence)
				require.Equal(t, uint64(0), it.Missed)

				// ...and so is one published while Next is parked again.
				ch = nextAsync(context.Background(), s)
				waitParked(t, 1)
				requirePending(t, ch)
				publish(t, c, "t", "y")
				r = await(t, ch)
				require.NoError(t, r.Err)
				require.Equal(t, 2*round, r.Item.Sequence)
				require.Equal(t, "y", r.Item.Value.String())
			}
		})
	}
}

func TestAllBreakClosesSubscription(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, topics.WithMaxSubscribers(1))
	s, err := c.Subscribe(ctx, "t")
	require.NoError(t, err)
	publish(t, c, "t", "a")
	publish(t, c, "t", "b")
	var got []string
	for it, err := range s.All(ctx) {
		require.NoError(t, err)
		got = append(got, it.Value.String())
		break
	}
	assert.Equal(t, []string{"a"}, got)
	requireEnded(t, nextErr(t, s), []error{topics.ErrClosed})
	require.NoError(t, s.Close(), "Close after All closed it")
	// The slot is free again.
	subscribe(t, c, "t")
}

func TestAllYieldsEndErrorOnce(t *testing.T) {
	cases := []struct {
		desc  string
		end   func(c *topics.Cache, s *topics.Subscription[topics.Value], cancel context.CancelFunc)
		wraps []error
	}{
		{"Subscription.Close", func(_ *topics.Cache, s *topics.Subscription[topics.Value], _ context.CancelFunc) {
			_ = s.Close()
		}, []error{topics.ErrClosed}},
		{"Cache.Close", func(c *topics.Cache, _ *topics.Subscription[topics.Value], _ context.CancelFunc) {
			_ = c.Close()
		}, []error{topics.ErrClosed}},
		{"All context cancelled", func(_ *topics.Cache, _ *topics.Subscription[topics.Value], cancel context.CancelFunc) {
			cancel()
		}, []error{context.Canceled}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			c := newCache(t)
			s := subscribe(t, c, "t")
			publish(t, c, "t", "a")
			publish(t, c, "t", "b")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var items []string
			var errs []error
			iterations := 0
			for it, err := range s.All(ctx) {
				iterations++
				if iterations > 10 {
					t.Fatal("All did not stop")
				}
				if err != nil {
					assert.Equal(t, topics.Item[topics.Value]{}, it)
					errs = append(errs, err)
					continue // All must stop by itself
				}
				items = append(items, it.Value.String())
				if len(items) == 2 {
					tc.end(c, s, cancel)
				}
			}
			assert.Equal(t, []string{"a", "b"}, items)
			require.Len(t, errs, 1, "the end error is yielded once")
			requireEnded(t, errs[0], tc.wraps)
			// When All ends, the subscription is closed.
			requireEnded(t, nextErr(t, s), []error{topics.ErrClosed})
		})
	}
}

func TestAllParkedIsWoken(t *testing.T) {
	c := newCache(t)
	s := subscribe(t, c, "t")
	items := make(chan string)
	errs := make(chan []error, 1)
	go func() {
		var got []error
		for it, err := range s.All(context.Background()) {
			if err != nil {
				got = append(got, err)
				continue
			}
			items <- it.Value.String()
		}
		errs <- got
	}()
	waitParked(t, 1)
	publish(t, c, "t", "a")
	select {
	case v := <-items:
		assert.Equal(t, "a", v)
	case <-time.After(waitLimit):
		t.Fatal("a parked range over All was not woken by a publish")
	}
	waitParked(t, 1) // parked again, waiting for the next item
	require.NoError(t, s.Close())
	select {
	case got := <-errs:
		require.Len(t, got, 1, "the end error is yielded once")
		require.ErrorIs(t, got[0], topics.ErrClosed)
	case <-time.After(waitLimit):
		t.Fatal("a parked range over All was not woken by Close")
	}
}

// ownDoneContext is a context with a Done channel of its own, as some
// frameworks make: the context package must start a goroutine to watch it
// for anyone who registers with context.AfterFunc.
type ownDoneContext struct {
	context.Context
	done chan struct{}
}

func (c ownDoneContext) Done() <-chan struct{} { return c.done }

func (c ownDoneContext) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

// TestEndsReleaseSubscribeContext checks that a subscription that has ended
// and has been read to its end (Next returned the end error) holds on to
// nothing through the context given to Subscribe. The package says only
// subscriptions "you do not read to its end" need closing, and the design
// says nothing leaks a goroutine.
func TestEndsReleaseSubscribeContext(t *testing.T) {
	ways := []struct {
		desc string
		end  func(t *testing.T, e *topics.Engine, c *topics.Cache, s *topics.Subscription[topics.Value])
	}{
		{"Subscription.Close", func(t *testing.T, _ *topics.Engine, _ *topics.Cache, s *topics.Subscription[topics.Value]) {
			require.NoError(t, s.Close())
		}},
		{"Cache.Close", func(t *testing.T, _ *topics.Engine, c *topics.Cache, _ *topics.Subscription[topics.Value]) {
			require.NoError(t, c.Close())
		}},
		{"Engine.Close", func(t *testing.T, e *topics.Engine, _ *topics.Cache, _ *topics.Subscription[topics.Value]) {
			require.NoError(t, e.Close())
		}},
		{"Engine.DeleteCache", func(t *testing.T, e *topics.Engine, _ *topics.Cache, _ *topics.Subscription[topics.Value]) {
			require.NoError(t, e.DeleteCache("c"))
		}},
	}
	for _, way := range ways {
		// subscribeAndEnd subscribes with ctx to topic "t" of a new cache of
		// e, ends the subscription this way and reads it to its end.
		subscribeAndEnd := func(t *testing.T, ctx context.Context, e *topics.Engine) (*topics.Cache, *topics.Subscription[topics.Value]) {
			t.Helper()
			c, err := e.CreateCache("c")
			require.NoError(t, err)
			s, err := c.Subscribe(ctx, "t")
			require.NoError(t, err)
			way.end(t, e, c, s)
			requireEnded(t, nextErr(t, s), []error{topics.ErrClosed})
			return c, s
		}
		t.Run(way.desc+"/no goroutine left", func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			ctx := ownDoneContext{context.Background(), make(chan struct{})}
			defer close(ctx.done) // lets a leaked watcher go before TestMain looks
			e := topics.New()
			defer e.Close()
			subscribeAndEnd(t, ctx, e)
			goleak.VerifyNone(t, before)
		})
		t.Run(way.desc+"/not retained by the context", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background()) // long-lived
			defer cancel()
			e := topics.New()
			defer e.Close()
			c, s := subscribeAndEnd(t, ctx, e)
			w := weak.Make(s)
			s = nil // drop the last reference
			_ = s
			runtime.GC()
			runtime.GC()
			assert.True(t, w.Value() == nil, "the ended subscription (and the topic it points to) is still reachable, through the context given to Subscribe")
			runtime.KeepAlive(c)
		})
	}
}

// The first end of a subscription is the one Next reports from then on:
// closing a subscription that its cache's deletion already ended must not
// turn "cache not found" into a plain "closed". (A case FuzzModel finds
// when Close replaces the reason.)
func TestEndReasonSurvivesClose(t *testing.T) {
	e := topics.New()
	defer e.Close()
	c, err := e.CreateCache("c")
	require.NoError(t, err)
	s, err := c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	require.NoError(t, e.DeleteCache("c"))

	_, err = s.Next(context.Background())
	require.ErrorIs(t, err, topics.ErrCacheNotFound)
	require.NoError(t, s.Close())
	_, err = s.Next(context.Background())
	assert.ErrorIs(t, err, topics.ErrClosed)
	assert.ErrorIs(t, err, topics.ErrCacheNotFound, "the deletion is still the reason after Close")

	// Deleted and then closed before anybody called Next: the same.
	c, err = e.CreateCache("c")
	require.NoError(t, err)
	s, err = c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	require.NoError(t, e.DeleteCache("c"))
	require.NoError(t, s.Close())
	_, err = s.Next(context.Background())
	assert.ErrorIs(t, err, topics.ErrCacheNotFound)

	// The other way round: closed first, then deleted: "closed" it stays.
	c, err = e.CreateCache("c")
	require.NoError(t, err)
	s, err = c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, e.DeleteCache("c"))
	_, err = s.Next(context.Background())
	assert.ErrorIs(t, err, topics.ErrClosed)
	assert.NotErrorIs(t, err, topics.ErrCacheNotFound)
}

// TestEndsSubscribeContextSeenAtOnce: once the context given to Subscribe is
// done, Next reports the end at once, even with an item waiting, and so do
// NextBatch and All. (The AfterFunc that ends the subscription runs on its
// own goroutine: relying on it alone, 175-198 of 200 such Nexts handed out
// the waiting item.)
func TestEndsSubscribeContextSeenAtOnce(t *testing.T) {
	c := newCache(t)
	reads := map[string]func(s *topics.Subscription[topics.Value]) error{
		"Next": func(s *topics.Subscription[topics.Value]) error {
			_, err := s.Next(context.Background())
			return err
		},
		"NextBatch": func(s *topics.Subscription[topics.Value]) error {
			_, err := s.NextBatch(context.Background(), make([]topics.Item[topics.Value], 4))
			return err
		},
		"All": func(s *topics.Subscription[topics.Value]) error {
			for _, err := range s.All(context.Background()) {
				return err
			}
			return nil
		},
	}
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			for round := range 200 {
				ctx, cancel := context.WithCancel(context.Background())
				s, err := c.Subscribe(ctx, "t")
				require.NoError(t, err)
				publish(t, c, "t", "waiting")
				cancel()
				err = read(s)
				require.ErrorIs(t, err, topics.ErrClosed, "round %d", round)
				require.ErrorIs(t, err, context.Canceled, "round %d", round)
				s.Close()
			}
		})
	}
}

// TestNextBatchEmpty: with no room for an item, NextBatch reads nothing and
// waits for nothing, and reports the end of an ended subscription.
func TestNextBatchEmpty(t *testing.T) {
	c := newCache(t)
	s := subscribe(t, c, "t")
	publish(t, c, "t", "x")
	n, err := s.NextBatch(context.Background(), nil)
	assert.Zero(t, n)
	assert.NoError(t, err)
	require.NoError(t, s.Close())
	n, err = s.NextBatch(context.Background(), nil)
	assert.Zero(t, n)
	assert.ErrorIs(t, err, topics.ErrClosed)
}

// TestEndsFiguresFinal: a subscription closed from another goroutine with
// a backlog has final figures once its reader has seen the end, and the
// topic's figures are the sums of its subscriptions'. (Figures published
// only every few deliveries trail for good without that: read 40 of 100,
// then Close: Delivered 32.)
func TestEndsFiguresFinal(t *testing.T) {
	for _, end := range []string{"Close", "Cache.Close"} {
		t.Run(end, func(t *testing.T) {
			c := newCache(t)
			s := subscribe(t, c, "t")
			other := subscribe(t, c, "t")
			for range 100 {
				publish(t, c, "t", "x")
			}
			for range 40 {
				next(t, s)
			}
			for range 7 {
				next(t, other)
			}
			if end == "Close" {
				require.NoError(t, s.Close())
				require.NoError(t, other.Close())
			} else {
				require.NoError(t, c.Close())
			}
			require.ErrorIs(t, nextErr(t, s), topics.ErrClosed)
			require.ErrorIs(t, nextErr(t, other), topics.ErrClosed)
			st := s.Stats()
			assert.Equal(t, [4]uint64{40, 0, 0, 60}, [4]uint64{st.Delivered, st.Missed, st.Lag, st.Unread})
			st = other.Stats()
			assert.Equal(t, [4]uint64{7, 0, 0, 93}, [4]uint64{st.Delivered, st.Missed, st.Lag, st.Unread})
			cs := c.Stats()
			assert.Equal(t, [3]uint64{47, 0, 153}, [3]uint64{cs.Delivered, cs.Missed, cs.Unread},
				"the topic counts its subscriptions' final figures")
		})
	}
}
