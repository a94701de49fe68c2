package topics_test

import (
	"context"
	"fmt"
	"regexp"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

// countingCtx is a context that never ends and counts how often Next asks
// it whether it has: Next does so each time it goes round its loop, so a
// waiting Next that woke up, for whatever reason, shows up in the count.
type countingCtx struct {
	context.Context
	calls *atomic.Int64
}

func (c countingCtx) Err() error {
	c.calls.Add(1)
	return c.Context.Err()
}

func (c countingCtx) Done() <-chan struct{} {
	c.calls.Add(1)
	return c.Context.Done()
}

// bubbleGoroutines returns how many goroutines are in the synctest bubble of
// the calling goroutine, from the headers of a full stack dump
// ("goroutine 7 [select (durable), synctest bubble 1]:"). Unlike
// runtime.NumGoroutine it does not count goroutines of other tests that are
// still winding down.
func bubbleGoroutines(t *testing.T) int {
	buf := goroutines()
	// The calling goroutine comes first. The bubble closes the header's
	// bracket, unless goroutine labels (GODEBUG=tracebacklabels=1) follow.
	header, _, _ := strings.Cut(buf, "\n")
	m := bubbleHeader.FindStringSubmatch(header)
	require.NotNil(t, m, "not in a synctest bubble: %s", header)
	mark := "synctest bubble " + m[1]
	return strings.Count(buf, mark+"]:\n") + strings.Count(buf, mark+" labels:")
}

var bubbleHeader = regexp.MustCompile(`synctest bubble (\d+)[] ]`)

// goroutinesCreated returns how many goroutines the process has created.
func goroutinesCreated(t *testing.T) uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	require.Equal(t, metrics.KindUint64, s[0].Value.Kind(), "runtime metric %s is missing", s[0].Name)
	return s[0].Value.Uint64()
}

// TestIdleSubscriptionsLeaveProcessIdle parks 10,000 subscriptions in Next
// and checks that, while nothing is published, they cost no CPU: nothing
// runs and no timer fires, even over a (fake) day.
//
// What it can honestly assert, inside a synctest bubble:
//
//   - synctest.Wait returns, so every goroutine of the bubble is durably
//     blocked: no Next spins or yields in a loop.
//   - The library started no goroutine of its own for the subscriptions: the
//     bubble has exactly the 10,000 goroutines the test started on top of
//     what it had before subscribing (so there is no poller to run).
//   - Over 24 hours of fake time (the bubble's clock jumps from timer to
//     timer, running each), no Next went round its loop again (it would have
//     asked its context, which counts), none returned, and the process
//     created no goroutine, so no time.AfterFunc callback ran (each runs in
//     a goroutine of its own) and nothing was started. (The count of
//     goroutines created is process-wide, but the fake day passes in
//     microseconds of real time, with no other test running.) A topic
//     created by Subscribe has a subscriber from the start, so the cache's
//     idle sweeper is never armed either.
//   - A wake-up that arrives is seen: one publish per topic then makes all
//     10,000 return with their item, and the context count moves.
//
// What it cannot see is a timer whose firing only wakes a goroutine outside
// Next; there is none, since the subscriptions started no goroutine.
func TestIdleSubscriptionsLeaveProcessIdle(t *testing.T) {
	const (
		topicCount = 100
		perTopic   = 100
		n          = topicCount * perTopic
	)
	watchdog(t, 2*time.Minute)
	synctest.Test(t, func(t *testing.T) {
		c, err := topics.NewCache("quiet")
		require.NoError(t, err)
		defer c.Close()

		var calls atomic.Int64
		ctx := countingCtx{Context: context.Background(), calls: &calls}
		subs := make([]*topics.Subscription[topics.Value], 0, n)
		names := make([]string, topicCount)
		goroutinesBefore := bubbleGoroutines(t)
		for i := range names {
			names[i] = fmt.Sprintf("t%03d", i)
			for range perTopic {
				s, err := c.Subscribe(context.Background(), names[i])
				require.NoError(t, err)
				subs = append(subs, s)
			}
		}
		require.Equal(t, goroutinesBefore, bubbleGoroutines(t), "subscribing started goroutines")

		var returned atomic.Int64
		results := make([]result[topics.Value], n)
		var wg sync.WaitGroup
		for i, s := range subs {
			wg.Go(func() {
				it, err := s.Next(ctx)
				results[i] = result[topics.Value]{Item: it, Err: err}
				returned.Add(1)
			})
		}

		start := time.Now()
		synctest.Wait() // every goroutine of the bubble is durably blocked
		require.Equal(t, start, time.Now(), "no fake time passed while they parked")
		require.Zero(t, returned.Load(), "a Next returned with nothing published")
		require.Equal(t, goroutinesBefore+n, bubbleGoroutines(t),
			"only the test's %d goroutines exist beside those from before", n)
		callsParked := calls.Load()

		// From here on, nothing at all for a day.
		createdParked := goroutinesCreated(t)
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		assert.Equal(t, callsParked, calls.Load(), "a parked Next went round its loop")
		assert.Equal(t, createdParked, goroutinesCreated(t), "goroutines were created while everything was idle")
		assert.Equal(t, goroutinesBefore+n, bubbleGoroutines(t))
		require.Zero(t, returned.Load(), "a Next returned after a day of nothing")

		for _, name := range names {
			publish(t, c, name, "wake up")
		}
		wg.Wait()
		assert.Greater(t, calls.Load(), callsParked, "the woken Next calls asked their context again")
		for i, r := range results {
			require.NoError(t, r.Err, "subscriber %d", i)
			require.Equal(t, "wake up", r.Item.Value.String(), "subscriber %d", i)
			require.Equal(t, names[i/perTopic], r.Item.Topic, "subscriber %d", i)
		}
		for _, s := range subs {
			require.NoError(t, s.Close())
		}
	})
}
