//go:build natsbridge_long

package natsbridge_test

// Long runs, behind a build tag:
//
//	go test -tags natsbridge_long -race -run Long -v ./natsbridge
//
// TestServerDiesMidStream and TestStreamLostOnRestart are their short
// versions in the ordinary tests.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/natsbridge"
	"github.com/ringbus/topics/natsbridge/internal/natstest"
)

// TestLongRollingRestarts: publishers and subscribers on three processes
// and four topics, while the servers are restarted one after the other,
// several times. Every topic's record is checked as in
// TestServerDiesMidStream.
func TestLongRollingRestarts(t *testing.T) {
	const (
		rounds    = 6
		topicsN   = 4
		afterLast = 30 // successful publishes of each publisher after the last restart
	)
	c := natstest.NewCluster(t, 3)
	var caches []*topics.Cache
	for i := range 3 {
		caches = append(caches, newProcess(t, c, i, natsbridge.WithTimeout(time.Second), natsbridge.WithLogger(testLogger(t))).cache(t, "long"))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()

	type run struct {
		rec     *pageRecorder
		subs    []*pageSubscriber
		pubs    []*pagePublisher
		closer  *pagePublisher
		readers *errGroup
	}
	runs := make([]*run, topicsN)
	for k := range runs {
		r := &run{rec: &pageRecorder{}}
		for i, cache := range caches {
			for j := range 2 {
				r.subs = append(r.subs, r.rec.subscriber(fmt.Sprintf("p%d/%d", i, j), subscribe(t, cache, fmt.Sprint("t", k))))
			}
			r.pubs = append(r.pubs, r.rec.publisher())
		}
		r.closer = r.rec.publisher()
		r.readers = r.rec.readAll(ctx, r.subs, r.closer)
		runs[k] = r
	}
	restarted := make(chan struct{}) // closed after the last restart
	var pubs errGroup
	for k, r := range runs {
		for i, cache := range caches {
			pr := r.pubs[i]
			pubs.run(func() error {
				after := 0
				for after < afterLast {
					pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
					_, err := pr.publish(pctx, cache, fmt.Sprint("t", k))
					pcancel()
					switch {
					case ctx.Err() != nil:
						return ctx.Err()
					case err == nil:
						select {
						case <-restarted:
							after++
						default:
						}
					case !errors.Is(err, natsbridge.ErrUnavailable):
						return err
					}
				}
				return nil
			})
		}
	}
	var lostBefore []uint64
	for round := range rounds {
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond) // let items flow between restarts
		nd := c.Node(round % 3)
		nd.Stop()
		nd.Start()
		require.NoError(t, c.WaitReady())
	}
	for _, r := range runs {
		lostBefore = append(lostBefore, r.rec.tick())
	}
	close(restarted)
	require.NoError(t, pubs.wait())

	for k, r := range runs {
		require.NoError(t, finish(ctx, r.closer, caches[0], fmt.Sprint("t", k)))
		require.NoError(t, r.readers.wait())
		t.Run(fmt.Sprint("t", k), func(t *testing.T) { r.rec.check(t, lostBefore[k]) })
	}
}

// TestLongAllServersDownAndBack: every server stops; publishing fails with
// ErrUnavailable, subscriptions stay open; the servers come back (their
// memory streams empty), and the topic goes on with a new page.
func TestLongAllServersDownAndBack(t *testing.T) {
	c := natstest.NewCluster(t, 3)
	var caches []*topics.Cache
	var subs []*topics.Subscription[topics.Value]
	for i := range 3 {
		caches = append(caches, newProcess(t, c, i, natsbridge.WithTimeout(time.Second)).cache(t, "down"))
		subs = append(subs, subscribe(t, caches[i], "t"))
	}
	publish(t, caches[0], "t", "before")
	var page uint64
	for _, s := range subs {
		page = next(t, s).Page
	}
	for _, nd := range c.Nodes() {
		nd.Stop()
	}
	require.ErrorIs(t, caches[1].PublishString(t.Context(), "t", "lost"), natsbridge.ErrUnavailable)
	for _, nd := range c.Nodes() {
		nd.Start()
	}
	require.NoError(t, c.WaitReady())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, poll(ctx, func() bool {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		defer pcancel()
		return caches[2].PublishString(pctx, "t", "after") == nil
	}))
	for _, s := range subs {
		it := next(t, s)
		require.Equal(t, "after", it.Value.String())
		require.Greater(t, it.Page, page)
	}
}
