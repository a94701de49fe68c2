package topics_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

// TestShutdownDeliversEverything: a program that publishes and then shuts
// its cache down loses nothing: every subscription that keeps reading, and
// every handler, gets every item published before, and then ends. (Close
// instead ends them at once: fast readers got about 500 of 20,000.)
func TestShutdownDeliversEverything(t *testing.T) {
	const items, readers = 20_000, 4
	c := newCache(t, topics.WithRingSize(1<<15))
	ctx := t.Context()
	var got [readers + 1]int
	var wg sync.WaitGroup
	for i := range readers {
		s := subscribe(t, c, "t")
		wg.Go(func() {
			for it, err := range s.All(ctx) {
				if err != nil {
					assert.ErrorIs(t, err, topics.ErrClosed)
					return
				}
				assert.Zero(t, it.Missed)
				got[i]++
			}
		})
	}
	h, err := c.Handle(ctx, "t", func(context.Context, topics.Item[topics.Value]) error {
		got[readers]++
		return nil
	})
	require.NoError(t, err)

	for range items {
		publish(t, c, "t", "x")
	}
	require.NoError(t, c.Shutdown(ctx))
	wg.Wait()
	awaitDone(t, h)
	for i, n := range got {
		assert.Equal(t, items, n, "reader %d", i)
	}
	assert.ErrorIs(t, h.Err(), topics.ErrClosed)
	assert.ErrorIs(t, c.PublishString(ctx, "t", "late"), topics.ErrClosed)
}

// TestShutdownRefusesAndWaits: while a shutdown waits for its readers, new
// publishes and subscriptions are refused; a reader that never reads keeps
// it waiting until its context ends, and is then left with what it did not
// read, counted as unread.
func TestShutdownRefusesAndWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t)
		stalled := subscribe(t, c, "t")
		reader := subscribe(t, c, "t")
		for range 10 {
			publish(t, c, "t", "x")
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- c.Shutdown(ctx) }()
		synctest.Wait()
		require.ErrorIs(t, c.PublishString(t.Context(), "t", "refused"), topics.ErrClosed)
		_, err := c.Subscribe(t.Context(), "t")
		require.ErrorIs(t, err, topics.ErrClosed)

		for i := uint64(1); i <= 10; i++ {
			assert.Equal(t, i, next(t, reader).Sequence)
		}
		err = nextErr(t, reader)
		require.ErrorIs(t, err, topics.ErrClosed)
		assert.Contains(t, err.Error(), "shut down")
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned %v with a subscription left", err)
		default:
		}

		time.Sleep(time.Minute)
		require.ErrorIs(t, <-done, context.DeadlineExceeded)
		require.ErrorIs(t, nextErr(t, stalled), topics.ErrClosed)
		assert.Equal(t, topics.SubscriptionStats{Topic: "t", Page: stalled.Stats().Page, Unread: 10}, stalled.Stats())
		assert.Equal(t, topics.SubscriptionStats{Topic: "t", Page: reader.Stats().Page, Delivered: 10}, reader.Stats())
		st := c.Stats()
		assert.Equal(t, uint64(10), st.Delivered)
		assert.Equal(t, uint64(10), st.Unread)
	})
}

// TestShutdownWithoutSubscriptions returns at once, and is idempotent.
func TestShutdownWithoutSubscriptions(t *testing.T) {
	c := newCache(t)
	publish(t, c, "t", "x")
	require.NoError(t, c.Shutdown(t.Context()))
	require.NoError(t, c.Shutdown(t.Context()))
	require.NoError(t, c.Close())
	require.ErrorIs(t, c.PublishString(t.Context(), "t", "x"), topics.ErrClosed)
}

func TestEngineShutdown(t *testing.T) {
	e := topics.New()
	t.Cleanup(func() { e.Close() })
	var subs []*topics.Subscription[topics.Value]
	for _, name := range []string{"a", "b"} {
		c, err := e.CreateCache(name)
		require.NoError(t, err)
		subs = append(subs, subscribe(t, c, "t"))
		publish(t, c, "t", name)
	}
	results := make(chan string, 2*len(subs))
	for _, s := range subs {
		go func() {
			for it, err := range s.All(t.Context()) {
				if err != nil {
					results <- err.Error()
					return
				}
				results <- it.Value.String()
			}
		}()
	}
	require.NoError(t, e.Shutdown(t.Context()))
	var got []string
	for range 2 * len(subs) {
		got = append(got, receive(t, results))
	}
	assert.ElementsMatch(t, []string{"a", "b", "topics: engine shut down", "topics: engine shut down"}, got)
	_, err := e.CreateCache("c")
	require.ErrorIs(t, err, topics.ErrClosed)
	assert.Empty(t, e.ListCaches())
}

// TestShutdownLossless: lossless readers drain too, and the publishers they
// hold back finish.
func TestShutdownLossless(t *testing.T) {
	c := newCache(t, topics.WithRingSize(4))
	s := subscribe(t, c, "t", topics.Lossless())
	published := make(chan error, 1)
	go func() {
		for range 12 {
			if err := c.PublishString(t.Context(), "t", "x"); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	for i := uint64(1); i <= 12; i++ {
		it := next(t, s)
		require.Equal(t, [2]uint64{i, 0}, [2]uint64{it.Sequence, it.Missed})
	}
	require.NoError(t, receive(t, published))
	go func() { published <- c.Shutdown(t.Context()) }()
	require.ErrorIs(t, nextErr(t, s), topics.ErrClosed)
	require.NoError(t, receive(t, published))
}
