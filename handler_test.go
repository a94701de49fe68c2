package topics_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

// awaitDone waits for a handler to end, failing after waitLimit.
func awaitDone(t testing.TB, h *topics.Handler) {
	t.Helper()
	select {
	case <-h.Done():
	case <-time.After(waitLimit):
		t.Fatalf("handler did not end within %v", waitLimit)
	}
}

// receive reads one value from ch, failing after waitLimit.
func receive[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("nothing received within %v", waitLimit)
		panic("unreachable")
	}
}

func typedTopic[T any](t testing.TB, c *topics.Cache, name string) *topics.Topic[T] {
	t.Helper()
	tp, err := topics.TopicOf[T](c, name)
	require.NoError(t, err)
	return tp
}

func TestHandlerDeliversInOrder(t *testing.T) {
	c := newCache(t, topics.WithRingSize(256))
	tp := typedTopic[int](t, c, "numbers")
	got := make(chan topics.Item[int], 100)
	h, err := tp.Handle(context.Background(), func(_ context.Context, it topics.Item[int]) error {
		got <- it
		return nil
	})
	require.NoError(t, err)
	for i := 1; i <= 100; i++ {
		require.NoError(t, tp.Publish(context.Background(), i*10))
	}
	for i := 1; i <= 100; i++ {
		it := receive(t, got)
		require.Equal(t, uint64(i), it.Sequence)
		require.Equal(t, i*10, it.Value)
		require.Equal(t, uint64(0), it.Missed)
		require.Equal(t, "numbers", it.Topic)
	}
	assert.Nil(t, h.Err(), "Err is nil while the handler runs")
	st := h.Stats()
	assert.Equal(t, uint64(100), st.Delivered)
	assert.Equal(t, uint64(0), st.Lag)

	require.NoError(t, h.Stop())
	select {
	case <-h.Done():
	default:
		t.Fatal("Done not closed after Stop returned")
	}
	assert.ErrorIs(t, h.Err(), topics.ErrClosed)
	assert.ErrorIs(t, h.Wait(), topics.ErrClosed)
	ts, _ := c.TopicStats("numbers")
	assert.Equal(t, 0, ts.Subscribers, "the handler's subscription is closed")
}

func TestCacheHandle(t *testing.T) {
	c := newCache(t)
	got := make(chan string, 3)
	h, err := c.Handle(context.Background(), "news", func(_ context.Context, it topics.Item[topics.Value]) error {
		got <- it.Value.String()
		return nil
	})
	require.NoError(t, err)
	defer h.Stop()
	publish(t, c, "news", "a")
	publish(t, c, "news", "b")
	assert.Equal(t, "a", receive(t, got))
	assert.Equal(t, "b", receive(t, got))
}

func TestHandleRefusals(t *testing.T) {
	c := newCache(t, topics.WithMaxSubscribers(1))
	ctx := context.Background()
	noop := func(context.Context, topics.Item[topics.Value]) error { return nil }

	_, err := c.Handle(ctx, "t", nil)
	assert.ErrorIs(t, err, topics.ErrInvalidOption)
	_, err = typedTopic[int](t, c, "n").Handle(ctx, nil)
	assert.ErrorIs(t, err, topics.ErrInvalidOption)
	_, err = c.Handle(ctx, "bad name", noop)
	assert.ErrorIs(t, err, topics.ErrInvalidName)
	_, err = c.Handle(ctx, "t", noop, nil)
	assert.ErrorIs(t, err, topics.ErrInvalidOption)
	assert.Equal(t, 0, c.Stats().Subscribers, "a refused Handle leaves no subscription")

	h, err := c.Handle(ctx, "t", noop)
	require.NoError(t, err)
	_, err = c.Handle(ctx, "t", noop)
	assert.ErrorIs(t, err, topics.ErrLimitExceeded)
	require.NoError(t, h.Stop())

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.Handle(cancelled, "t", noop)
	assert.ErrorIs(t, err, context.Canceled)
	require.NoError(t, c.Close())
	_, err = c.Handle(ctx, "t", noop)
	assert.ErrorIs(t, err, topics.ErrClosed)
}

func TestHandlerStopIsIdempotentAndConcurrent(t *testing.T) {
	c := newCache(t)
	h, err := c.Handle(context.Background(), "t", func(context.Context, topics.Item[topics.Value]) error { return nil })
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { assert.NoError(t, h.Stop()) })
	}
	wg.Wait()
	assert.NoError(t, h.Stop())
	assert.ErrorIs(t, h.Err(), topics.ErrClosed)
}

// Stop waits for a function that is running to return, and lets it finish
// its item: the function's context stays live, and the item it is handling
// is not cut short. (Before, Stop cancelled it: "mailed 5000, audited 4999".)
func TestHandlerStopFinishesTheItem(t *testing.T) {
	c := newCache(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	finished := make(chan error, 1)
	h, err := c.Handle(context.Background(), "t", func(ctx context.Context, _ topics.Item[topics.Value]) error {
		close(entered)
		<-release
		finished <- ctx.Err()
		return nil
	})
	require.NoError(t, err)
	publish(t, c, "t", "x")
	publish(t, c, "t", "not given to the function")
	receive(t, entered)

	stopped := make(chan error)
	go func() { stopped <- h.Stop() }()
	waitStopping := func() bool {
		select {
		case <-stopped:
			return false
		default:
			return true
		}
	}
	// Stop has closed the subscription (what it has not read is unread)
	// and waits for the function.
	require.Eventually(t, func() bool { return h.Stats().Unread > 0 }, waitLimit, time.Millisecond)
	assert.True(t, waitStopping(), "Stop returned while the function was still running")
	close(release)
	assert.NoError(t, receive(t, finished), "the item in progress ran with a live context")
	assert.NoError(t, receive(t, stopped))
	st := h.Stats()
	assert.Equal(t, uint64(1), st.Delivered)
	assert.Equal(t, uint64(1), st.Unread, "the item not yet given is counted as unread")
}

// Cancelling the context given to Handle is how an item in progress is
// interrupted.
func TestHandlerContextInterruptsItem(t *testing.T) {
	c := newCache(t)
	ctx, cancel := context.WithCancel(context.Background())
	entered := make(chan struct{})
	h, err := c.Handle(ctx, "t", func(ctx context.Context, _ topics.Item[topics.Value]) error {
		close(entered)
		<-ctx.Done()
		return nil
	})
	require.NoError(t, err)
	publish(t, c, "t", "x")
	receive(t, entered)
	cancel()
	awaitDone(t, h)
	assert.ErrorIs(t, h.Err(), context.Canceled)
}

// Stop called by the handler's own function does not deadlock: it returns
// at once, and the handler ends when the function returns.
func TestHandlerStopFromInside(t *testing.T) {
	c := newCache(t)
	tp := typedTopic[int](t, c, "t")
	hc := make(chan *topics.Handler, 1)
	handled := make(chan int, 10)
	stopReturned := make(chan error, 1)
	h, err := tp.Handle(context.Background(), func(ctx context.Context, it topics.Item[int]) error {
		handled <- it.Value
		if it.Value == 2 {
			self := <-hc
			stopReturned <- self.Stop()
			stopReturned <- self.Stop() // idempotent from inside too
			assert.NoError(t, ctx.Err(), "Stop lets the function finish its item")
		}
		return nil
	})
	require.NoError(t, err)
	hc <- h
	for i := 1; i <= 5; i++ {
		require.NoError(t, tp.Publish(context.Background(), i))
	}
	assert.NoError(t, receive(t, stopReturned))
	assert.NoError(t, receive(t, stopReturned))
	awaitDone(t, h)
	assert.ErrorIs(t, h.Err(), topics.ErrClosed)
	assert.NoError(t, h.Stop())
	close(handled)
	var seen []int
	for v := range handled {
		seen = append(seen, v)
	}
	assert.Equal(t, []int{1, 2}, seen, "nothing is handled after Stop")
}

// One handler may stop another from inside its function: that Stop waits.
func TestHandlerStopsAnother(t *testing.T) {
	c := newCache(t)
	other, err := c.Handle(context.Background(), "b", func(context.Context, topics.Item[topics.Value]) error { return nil })
	require.NoError(t, err)
	stopped := make(chan struct{})
	h, err := c.Handle(context.Background(), "a", func(context.Context, topics.Item[topics.Value]) error {
		assert.NoError(t, other.Stop())
		select {
		case <-other.Done():
		default:
			t.Error("Stop of another handler returned before it ended")
		}
		close(stopped)
		return nil
	})
	require.NoError(t, err)
	defer h.Stop()
	publish(t, c, "a", "go")
	receive(t, stopped)
}

func TestHandlerPanicIsContained(t *testing.T) {
	logs := &logCapture{}
	c := newCache(t, topics.WithLogger(logs.logger()))
	tp := typedTopic[int](t, c, "jobs")

	bad, err := tp.Handle(context.Background(), func(_ context.Context, it topics.Item[int]) error {
		if it.Value == 2 {
			panic(fmt.Sprintf("cannot handle %d", it.Value))
		}
		return nil
	})
	require.NoError(t, err)
	good := make(chan int, 10)
	ok, err := tp.Handle(context.Background(), func(_ context.Context, it topics.Item[int]) error {
		good <- it.Value
		return nil
	})
	require.NoError(t, err)
	defer ok.Stop()

	for i := 1; i <= 4; i++ {
		require.NoError(t, tp.Publish(context.Background(), i))
	}
	awaitDone(t, bad)
	var pe *topics.PanicError
	require.ErrorAs(t, bad.Err(), &pe)
	assert.Equal(t, "cannot handle 2", pe.Value)
	assert.Equal(t, uint64(2), pe.Sequence)
	assert.Equal(t, "jobs", pe.Topic)
	assert.Equal(t, "test-cache", pe.Cache)
	assert.NotZero(t, pe.Page)
	assert.Contains(t, string(pe.Stack), "handler_test.go", "the stack shows where the function panicked")
	assert.Contains(t, pe.Error(), "cannot handle 2")
	assert.Same(t, pe, bad.Stop(), "Stop returns the panic")
	assert.Same(t, pe, bad.Wait())
	assert.Equal(t, uint64(2), bad.Stats().Delivered, "the handler stopped at the item that panicked")

	for i := 1; i <= 4; i++ {
		assert.Equal(t, i, receive(t, good), "the other handler goes on")
	}
	ts := tp.Stats()
	assert.Equal(t, 1, ts.Subscribers, "the panicked handler's subscription is closed")

	recs := logs.find("topics: handler panicked")
	require.Len(t, recs, 1)
	assert.Equal(t, "ERROR", recs[0].level)
	assert.Equal(t, "jobs", recs[0].attrs["topic"])
	assert.Equal(t, "test-cache", recs[0].attrs["cache"])
	assert.Equal(t, "2", recs[0].attrs["sequence"])
	assert.Equal(t, "cannot handle 2", recs[0].attrs["panic"])
	assert.Contains(t, recs[0].attrs["stack"], "handler_test.go")

	// The item can be skipped by a new handler that resumes after it.
	resumed := make(chan int, 10)
	h2, err := tp.Handle(context.Background(), func(_ context.Context, it topics.Item[int]) error {
		resumed <- it.Value
		return nil
	}, topics.ResumeAt(pe.Page, pe.Sequence+1))
	require.NoError(t, err)
	defer h2.Stop()
	assert.Equal(t, 3, receive(t, resumed))
	assert.Equal(t, 4, receive(t, resumed))
}

func TestHandlerPanicWithError(t *testing.T) {
	c := newCache(t)
	errBoom := errors.New("boom")
	h, err := c.Handle(context.Background(), "t", func(context.Context, topics.Item[topics.Value]) error {
		panic(errBoom)
	})
	require.NoError(t, err)
	publish(t, c, "t", "x")
	awaitDone(t, h)
	assert.ErrorIs(t, h.Err(), errBoom, "a *PanicError unwraps to a panic value that is an error")
	var pe *topics.PanicError
	assert.ErrorAs(t, h.Err(), &pe)
}

// failingHandler starts a handler of topic "t" of a new cache with a
// logger, whose function passes every value it gets to seen and fails with
// errBad on "bad".
func failingHandler(t *testing.T, opts ...topics.SubscribeOption) (h *topics.Handler, tp *topics.Topic[string], seen chan string, logs *logCapture, errBad error) {
	t.Helper()
	logs = &logCapture{}
	c := newCache(t, topics.WithLogger(logs.logger()))
	tp = typedTopic[string](t, c, "t")
	errBad = errors.New("bad item")
	seen = make(chan string, 10)
	h, err := tp.Handle(context.Background(), func(_ context.Context, it topics.Item[string]) error {
		seen <- it.Value
		if it.Value == "bad" {
			return errBad
		}
		return nil
	}, opts...)
	require.NoError(t, err)
	return h, tp, seen, logs, errBad
}

// By default a handler goes past an item its function fails on: the error
// is logged and counted, and the next items are handled.
func TestHandlerErrorGoesOn(t *testing.T) {
	h, tp, seen, logs, errBad := failingHandler(t)
	for _, v := range []string{"a", "bad", "c", "bad", "e"} {
		require.NoError(t, tp.Publish(context.Background(), v))
	}
	for _, want := range []string{"a", "bad", "c", "bad", "e"} {
		assert.Equal(t, want, receive(t, seen))
	}
	n, last := h.Failures()
	assert.Equal(t, uint64(2), n)
	assert.Same(t, errBad, last)
	assert.NoError(t, h.Err(), "still running")
	assert.NoError(t, h.Stop(), "going past errors is not a failure of the handler")
	recs := logs.find("topics: handler failed on an item, and goes on")
	require.Len(t, recs, 2)
	assert.Equal(t, "bad item", recs[0].attrs["error"])
	assert.Equal(t, "2", recs[0].attrs["sequence"])
}

// With StopOnError, the first error ends the handler.
func TestHandlerStopOnError(t *testing.T) {
	h, tp, seen, logs, errBad := failingHandler(t, topics.StopOnError())
	for _, v := range []string{"a", "bad", "c"} {
		require.NoError(t, tp.Publish(context.Background(), v))
	}
	awaitDone(t, h)
	assert.Same(t, errBad, h.Err(), "the function's error is returned as it is")
	assert.Same(t, errBad, h.Stop())
	close(seen)
	var got []string
	for v := range seen {
		got = append(got, v)
	}
	assert.Equal(t, []string{"a", "bad"}, got, "the handler ends at the error")
	n, _ := h.Failures()
	assert.Zero(t, n)
	recs := logs.find("topics: handler failed")
	require.Len(t, recs, 1)
	assert.Equal(t, "bad item", recs[0].attrs["error"])

	_, err := newCache(t).Subscribe(context.Background(), "t", topics.StopOnError())
	require.ErrorIs(t, err, topics.ErrInvalidOption, "a handler option given to Subscribe")
}

func TestHandlerGoexit(t *testing.T) {
	c := newCache(t)
	h, err := c.Handle(context.Background(), "t", func(context.Context, topics.Item[topics.Value]) error {
		runtime.Goexit()
		return nil
	})
	require.NoError(t, err)
	publish(t, c, "t", "x")
	awaitDone(t, h)
	require.Error(t, h.Err())
	assert.NotErrorIs(t, h.Err(), topics.ErrClosed)
	assert.Error(t, h.Stop(), "Stop reports the failure and does not hang")
	assert.Equal(t, 0, c.Stats().Subscribers)
}

func TestHandlerEndsWithItsContext(t *testing.T) {
	c := newCache(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	errShutdown := errors.New("shutting down")
	h, err := c.Handle(ctx, "t", func(context.Context, topics.Item[topics.Value]) error { return nil })
	require.NoError(t, err)
	cancel(errShutdown)
	awaitDone(t, h)
	assert.ErrorIs(t, h.Err(), topics.ErrClosed)
	assert.ErrorIs(t, h.Err(), errShutdown)
	assert.NoError(t, h.Stop(), "the end of the subscription is not a failure")
}

func TestHandlerEndsWithItsCache(t *testing.T) {
	e := topics.New()
	defer e.Close()
	c, err := e.CreateCache("c")
	require.NoError(t, err)
	h, err := c.Handle(context.Background(), "t", func(context.Context, topics.Item[topics.Value]) error { return nil })
	require.NoError(t, err)
	require.NoError(t, e.DeleteCache("c"))
	awaitDone(t, h)
	assert.ErrorIs(t, h.Err(), topics.ErrClosed)
	assert.ErrorIs(t, h.Err(), topics.ErrCacheNotFound)
	assert.NoError(t, h.Stop())
}

// A handler may publish to its own topic and to others, subscribe, and start
// and stop handlers, without deadlock.
func TestHandlerPublishesAndSubscribes(t *testing.T) {
	c := newCache(t, topics.WithRingSize(64))
	tp := typedTopic[int](t, c, "count")
	echoes := make(chan string, 100)
	var inner []*topics.Handler // touched only by the handler's goroutine until it ends
	innerStopped := make(chan struct{})
	h, err := tp.Handle(context.Background(), func(ctx context.Context, it topics.Item[int]) error {
		if it.Value == 1 {
			// Start a handler on another topic, and subscribe to it.
			ih, err := c.Handle(ctx, "echo", func(_ context.Context, it topics.Item[topics.Value]) error {
				echoes <- it.Value.String()
				return nil
			})
			if err != nil {
				return err
			}
			inner = append(inner, ih)
		}
		if it.Value <= 10 {
			if err := c.PublishString(ctx, "echo", fmt.Sprint(it.Value)); err != nil {
				return err
			}
		}
		if it.Value < 10 {
			return tp.Publish(ctx, it.Value+1) // to its own topic
		}
		if it.Value < 11 {
			return nil
		}
		// 11, from the test once it has all the echoes: stop what it
		// started, from inside.
		for _, ih := range inner {
			if err := ih.Stop(); err != nil {
				return err
			}
		}
		close(innerStopped)
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, tp.Publish(context.Background(), 1))
	for i := 1; i <= 10; i++ {
		assert.Equal(t, fmt.Sprint(i), receive(t, echoes))
	}
	require.NoError(t, tp.Publish(context.Background(), 11))
	receive(t, innerStopped)
	require.NoError(t, h.Stop())
	assert.Equal(t, uint64(11), h.Stats().Delivered)
	for _, ih := range inner {
		select {
		case <-ih.Done():
		default:
			t.Error("inner handler still running")
		}
	}
}

func TestHandlerInSynctestBubble(t *testing.T) {
	watchdog(t, time.Minute)
	synctest.Test(t, func(t *testing.T) {
		c, err := topics.NewCache("bubble")
		require.NoError(t, err)
		defer c.Close()
		tp := typedTopic[string](t, c, "t")
		var mu sync.Mutex // fake time orders events but is no synchronisation for the race detector
		var got []string
		handled := func() []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(got)
		}
		h, err := tp.Handle(t.Context(), func(_ context.Context, it topics.Item[string]) error {
			time.Sleep(time.Second) // fake time: a slow handler
			mu.Lock()
			got = append(got, it.Value)
			mu.Unlock()
			return nil
		})
		require.NoError(t, err)
		for _, v := range []string{"a", "b", "c"} {
			require.NoError(t, tp.Publish(context.Background(), v))
		}
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		assert.Equal(t, []string{"a", "b"}, handled(), "one item a second, in order")
		time.Sleep(time.Second)
		synctest.Wait() // the handler has handled everything and parked
		assert.Equal(t, []string{"a", "b", "c"}, handled())
		require.NoError(t, h.Stop())
	})
}

func TestPanicErrorMessage(t *testing.T) {
	pe := &topics.PanicError{Value: "oops", Cache: "c", Topic: "a/b", Sequence: 7}
	assert.True(t, strings.HasPrefix(pe.Error(), "topics: "))
	assert.Contains(t, pe.Error(), `"a/b"`)
	assert.Contains(t, pe.Error(), "7")
	assert.Contains(t, pe.Error(), "oops")
	assert.Nil(t, pe.Unwrap())
}

// Many handlers on one topic, started and stopped while a publisher runs
// (some stop themselves, some are stopped from outside, some both at once):
// each sees its items in order with exact loss counts, every Stop returns,
// nothing is left running.
func TestHandlerChurn(t *testing.T) {
	c := newCache(t, topics.WithRingSize(1<<12))
	tp := typedTopic[int](t, c, "t")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pubs sync.WaitGroup
	pubs.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			if err := tp.Publish(ctx, i); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
			if i%64 == 0 {
				runtime.Gosched()
			}
		}
	})

	const handlers = 40
	var wg sync.WaitGroup
	for n := range handlers {
		wg.Go(func() {
			var last uint64
			var count int
			self := make(chan *topics.Handler, 1)
			h, err := tp.Handle(context.Background(), func(_ context.Context, it topics.Item[int]) error {
				// A handler slower than the publisher is lapped: what it
				// misses is exactly the gap.
				if last != 0 && it.Sequence != last+1+it.Missed {
					return fmt.Errorf("handler %d: #%d (missed %d) after #%d", n, it.Sequence, it.Missed, last)
				}
				last = it.Sequence
				count++
				if n%2 == 0 && count == 20 {
					return (<-self).Stop() // from inside: must not deadlock
				}
				return nil
			})
			if err != nil {
				t.Error(err)
				return
			}
			self <- h
			if n%6 == 0 {
				awaitDone(t, h) // it stops itself; Stop below comes after
			}
			if err := h.Stop(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	cancel()
	pubs.Wait()
	assert.Equal(t, 0, c.Stats().Subscribers)
}
