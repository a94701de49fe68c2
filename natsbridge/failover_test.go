package natsbridge_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/natsbridge"
	"github.com/ringbus/topics/natsbridge/internal/natstest"
)

// TestServerDiesMidStream: three processes publish to one topic and read
// it; the server that holds the topic's stream dies. The topic goes on with
// a new page, on the servers left; every subscription stays open, including
// those of the process whose server died, which reconnects elsewhere; no
// item is delivered twice or out of order, loss is exact, and no publish
// that succeeded after the failure is lost.
func TestServerDiesMidStream(t *testing.T) {
	// Successful publishes before the kill, and of each publisher after it.
	// The publishes in flight when the server dies wait for the bridge's
	// timeout (a second here), then fail with ErrUnavailable.
	const before, after = 30, 20
	c := natstest.NewCluster(t, 3)
	var procs []*process
	for i := range 3 {
		procs = append(procs, newProcess(t, c, i, natsbridge.WithTimeout(time.Second), natsbridge.WithLogger(testLogger(t))))
	}
	caches := make([]*topics.Cache, 3)
	for i, p := range procs {
		caches[i] = p.cache(t, "f")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	rec := &pageRecorder{}
	var subs []*pageSubscriber
	for i, cache := range caches {
		for j := range 2 {
			subs = append(subs, rec.subscriber(fmt.Sprintf("p%d/%d", i, j), subscribe(t, cache, "t")))
		}
	}
	closer := rec.publisher()
	readers := rec.readAll(ctx, subs, closer)
	var ok atomic.Int64 // successes, all publishers
	killed := make(chan struct{})
	var lostBefore atomic.Uint64
	var pubs errGroup
	for i, cache := range caches {
		pr := rec.publisher()
		pubs.run(func() error {
			afterKill := 0
			for afterKill < after {
				pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := pr.publish(pctx, cache, "t")
				pcancel()
				if ctx.Err() != nil {
					return fmt.Errorf("publisher %d: %d successes after the kill: %w", i, afterKill, ctx.Err())
				}
				switch {
				case err == nil:
					ok.Add(1)
					select {
					case <-killed:
						afterKill++
					default:
					}
				case !errors.Is(err, natsbridge.ErrUnavailable):
					return fmt.Errorf("publisher %d: %w", i, err)
				}
			}
			return nil
		})
	}
	require.NoError(t, poll(ctx, func() bool { return ok.Load() > 0 }))
	victim := leaderOf(t, c, procs[0], "f", "t") // the stream exists: find its server
	require.NoError(t, poll(ctx, func() bool { return ok.Load() >= before }))
	victim.Stop()
	lostBefore.Store(rec.tick())
	close(killed)
	require.NoError(t, pubs.wait())

	require.NoError(t, finish(ctx, closer, caches[0], "t"))
	require.NoError(t, readers.wait())
	rec.check(t, lostBefore.Load())
	pages := map[uint64]bool{}
	for _, s := range subs {
		for _, it := range s.items {
			pages[it.Page] = true
		}
	}
	require.Greater(t, len(pages), 1, "the topic went on with a new page")
}

// poll calls cond every few milliseconds until it holds or ctx ends.
func poll(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// TestUnreachable: a process whose NATS server goes away. Its Publish and
// Subscribe fail with ErrUnavailable within their contexts; its
// subscriptions stay open; when the server is back, they go on, and
// receive what was published meanwhile as far as the stream still holds
// it, with the rest reported as missed.
func TestUnreachable(t *testing.T) {
	const window = 4
	c := natstest.NewCluster(t, 3)
	a := newProcess(t, c, 0, natsbridge.WithWindow(window))
	ca := a.cache(t, "u")
	sa := subscribe(t, ca, "t") // creates the stream
	leader := leaderOf(t, c, a, "u", "t")
	away := 1
	if c.Node(away) == leader {
		away = 2
	}
	b := newIsolatedProcess(t, c, away, natsbridge.WithWindow(window), natsbridge.WithTimeout(time.Minute))
	cb := b.cache(t, "u")
	sb := subscribe(t, cb, "t")
	publish(t, ca, "t", "before")
	require.Equal(t, "before", next(t, sa).Value.String())
	require.Equal(t, "before", next(t, sb).Value.String())

	c.Node(away).Stop()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	require.NoError(t, poll(ctx, func() bool { return !b.nc.IsConnected() }))

	// Within the caller's context, although the bridge's timeout is long.
	pctx, pcancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer pcancel()
	err := cb.PublishString(pctx, "t", "lost")
	require.ErrorIs(t, err, natsbridge.ErrUnavailable)
	_, err = cb.Subscribe(pctx, "other")
	require.Error(t, err)
	require.True(t, errors.Is(err, natsbridge.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded), "%v", err)
	wait, wcancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer wcancel()
	_, err = sb.Next(wait)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the subscription stays open")

	// Meanwhile the others go on: more than the window.
	for i := range 2 * window {
		publish(t, ca, "t", fmt.Sprint("while away ", i))
		require.Equal(t, fmt.Sprint("while away ", i), next(t, sa).Value.String())
	}

	c.Node(away).Start()
	first := next(t, sb)
	assert.Equal(t, "while away 4", first.Value.String(), "the oldest item the stream still holds")
	assert.Equal(t, uint64(window), first.Missed, "what it no longer holds is missed")
	for i := 5; i < 2*window; i++ {
		it := next(t, sb)
		assert.Equal(t, fmt.Sprint("while away ", i), it.Value.String())
		assert.Zero(t, it.Missed)
	}
	publish(t, cb, "t", "back")
	assert.Equal(t, "back", next(t, sa).Value.String())
	assert.Equal(t, "back", next(t, sb).Value.String())
}

// TestStreamLostOnRestart: the server of a topic's memory stream restarts
// before any process notices; the stream comes back empty. The topic goes
// on with a new page: no item of the old page is numbered again.
func TestStreamLostOnRestart(t *testing.T) {
	c := natstest.NewCluster(t, 3)
	var caches []*topics.Cache
	var subs []*topics.Subscription[topics.Value]
	var procs []*process
	for i := range 3 {
		p := newProcess(t, c, i)
		procs = append(procs, p)
		caches = append(caches, p.cache(t, "r"))
		subs = append(subs, subscribe(t, caches[i], "t"))
	}
	publish(t, caches[0], "t", "one")
	publish(t, caches[1], "t", "two")
	var page uint64
	for _, s := range subs {
		one, two := next(t, s), next(t, s)
		assert.Equal(t, []string{"one", "two"}, []string{one.Value.String(), two.Value.String()})
		page = two.Page
	}
	victim := leaderOf(t, c, procs[0], "r", "t")
	victim.Stop()
	victim.Start()
	require.NoError(t, c.WaitReady())

	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	require.NoError(t, poll(ctx, func() bool {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		defer pcancel()
		return caches[2].PublishString(pctx, "t", "three") == nil
	}))
	for _, s := range subs {
		it := next(t, s)
		assert.Equal(t, "three", it.Value.String())
		assert.Greater(t, it.Page, page, "a new page")
		assert.Equal(t, uint64(1), it.Sequence)
		assert.Zero(t, it.Missed)
	}
}
