package natsbridge_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

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
	t.Logf("DEBUG %s start", time.Now().Format("05.000"))
	c := natstest.NewCluster(t, 3)
	t.Logf("DEBUG %s cluster", time.Now().Format("05.000"))
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
	var ok atomic.Int64 // successes, all publishers
	killed := make(chan struct{})
	var lostBefore atomic.Uint64
	var pubs errGroup
	pubRecs := make([]*pagePublisher, 3)
	for i, cache := range caches {
		pr := rec.publisher()
		pubRecs[i] = pr
		pubs.run(func() error {
			afterKill := 0
			for afterKill < after {
				pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
				t0 := time.Now()
				_, err := pr.publish(pctx, cache, "t")
				if d := time.Since(t0); d > 100*time.Millisecond {
					t.Logf("DEBUG %s publisher %d: %v took %v", time.Now().Format("05.000"), i, err, d)
				}
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
	t.Logf("DEBUG %s subscribed", time.Now().Format("05.000"))
	require.NoError(t, poll(ctx, func() bool { return ok.Load() > 0 }))
	t.Logf("DEBUG %s first", time.Now().Format("05.000"))
	victim := leaderOf(t, c, procs[0], "f", "t") // the stream exists: find its server
	require.NoError(t, poll(ctx, func() bool { return ok.Load() >= before }))
	t.Logf("DEBUG %s kill", time.Now().Format("05.000"))
	victim.Stop()
	lostBefore.Store(rec.tick())
	close(killed)
	require.NoError(t, pubs.wait())
	t.Logf("DEBUG %s publishers done", time.Now().Format("05.000"))

	// The last item: the subscribers read until it.
	var last uint64
	require.NoError(t, poll(ctx, func() bool {
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
		defer pcancel()
		n, err := pubRecs[0].publish(pctx, caches[0], "t")
		last = n
		return err == nil
	}))
	var readers errGroup
	for _, s := range subs {
		readers.run(func() error { return s.readUntil(ctx, rec, pubRecs[0].id, last) })
	}
	require.NoError(t, readers.wait())
	t.Logf("DEBUG %s readers done", time.Now().Format("05.000"))
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
