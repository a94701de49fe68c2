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

// TestParkedSubscribersAreDurablyBlocked checks that subscribers waiting in
// Next neither spin nor poll: synctest.Wait only returns once every goroutine
// of the bubble is durably blocked, and no fake time passes while they wait.
// One publish then wakes them all.
func TestParkedSubscribersAreDurablyBlocked(t *testing.T) {
	const n = 100
	watchdog(t, time.Minute)
	synctest.Test(t, func(t *testing.T) {
		c, err := topics.NewCache("parked")
		require.NoError(t, err)
		defer c.Close()

		subs := make([]*topics.Subscription[topics.Value], n)
		for i := range subs {
			subs[i], err = c.Subscribe(context.Background(), "t")
			require.NoError(t, err)
		}
		results := make([]result[topics.Value], n)
		returned := make([]bool, n)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i, s := range subs {
			wg.Go(func() {
				it, err := s.Next(context.Background())
				mu.Lock()
				results[i] = result[topics.Value]{Item: it, Err: err}
				returned[i] = true
				mu.Unlock()
			})
		}

		start := time.Now()
		synctest.Wait() // returns only if all n goroutines are durably blocked
		assert.Equal(t, start, time.Now(), "no fake time passed: nobody sleeps or polls")
		mu.Lock()
		for i := range returned {
			require.False(t, returned[i], "Next %d returned with nothing published", i)
		}
		mu.Unlock()

		// Letting time pass makes none of them return.
		time.Sleep(time.Hour)
		synctest.Wait()
		mu.Lock()
		for i := range returned {
			require.False(t, returned[i], "Next %d returned after an hour of nothing", i)
		}
		mu.Unlock()

		publish(t, c, "t", "wake up")
		wg.Wait()
		for i, r := range results {
			require.NoError(t, r.Err, "subscriber %d", i)
			assert.Equal(t, "wake up", r.Item.Value.String(), "subscriber %d", i)
			assert.Equal(t, uint64(1), r.Item.Sequence, "subscriber %d", i)
			assert.Equal(t, uint64(0), r.Item.Missed, "subscriber %d", i)
		}
		for _, s := range subs {
			require.NoError(t, s.Close())
		}
	})
}

// TestParkedSubscribersWokenByEachPublish parks the subscribers again and
// again, across several topics, with contexts on Subscribe and Next.
func TestParkedSubscribersWokenByEachPublish(t *testing.T) {
	const (
		perTopic = 10
		rounds   = 5
	)
	watchdog(t, time.Minute)
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c, err := topics.NewCache("parked")
		require.NoError(t, err)
		defer c.Close()

		topicNames := []string{"a", "b", "c"}
		type reader struct {
			topic string
			s     *topics.Subscription[topics.Value]
			got   []uint64
			err   error
		}
		var readers []*reader
		for _, name := range topicNames {
			for range perTopic {
				s, err := c.Subscribe(ctx, name)
				require.NoError(t, err)
				readers = append(readers, &reader{topic: name, s: s})
			}
		}
		var wg sync.WaitGroup
		for _, r := range readers {
			wg.Go(func() {
				for range rounds {
					it, err := r.s.Next(ctx)
					if err != nil {
						r.err = err
						return
					}
					r.got = append(r.got, it.Sequence)
				}
			})
		}
		for range rounds {
			synctest.Wait() // everyone parked
			for _, name := range topicNames {
				publish(t, c, name, "x")
			}
		}
		wg.Wait()
		for _, r := range readers {
			require.NoError(t, r.err)
			assert.Equal(t, []uint64{1, 2, 3, 4, 5}, r.got, "topic %s", r.topic)
			require.NoError(t, r.s.Close())
		}
	})
}
