package topics_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

func TestSubscriptionStats(t *testing.T) {
	c := newCache(t, topics.WithRingSize(4))
	s := subscribe(t, c, "t")
	want := topics.SubscriptionStats{Topic: "t"}
	got := s.Stats()
	want.Page = got.Page
	assert.NotZero(t, got.Page)
	assert.Equal(t, want, got, "a new subscription")

	publishN(t, c, "t", 10)
	assert.Equal(t, uint64(10), s.Stats().Lag, "everything published is lag until read")

	it := next(t, s) // 7, having missed 1..6
	require.Equal(t, uint64(6), it.Missed)
	got = s.Stats()
	assert.Equal(t, uint64(1), got.Delivered)
	assert.Equal(t, uint64(6), got.Missed)
	assert.Equal(t, uint64(3), got.Lag)

	readUpTo(t, s, 10)
	got = s.Stats()
	assert.Equal(t, uint64(4), got.Delivered)
	assert.Equal(t, uint64(6), got.Missed)
	assert.Equal(t, uint64(0), got.Lag)

	publishN(t, c, "t", 2)
	assert.Equal(t, uint64(2), s.Stats().Lag)
	require.NoError(t, s.Close())
	got = s.Stats()
	assert.Equal(t, uint64(4), got.Delivered, "figures stay readable after Close")
}

func TestSubscriptionStatsWithResume(t *testing.T) {
	c := newCache(t, topics.WithRingSize(8))
	first := subscribe(t, c, "t")
	publishN(t, c, "t", 6)
	page := next(t, first).Page

	s := subscribe(t, c, "t", topics.ResumeAt(page, 3))
	assert.Equal(t, uint64(4), s.Stats().Lag, "3, 4, 5 and 6 are still to read")
	readUpTo(t, s, 6)
	got := s.Stats()
	assert.Equal(t, uint64(4), got.Delivered)
	assert.Equal(t, uint64(0), got.Lag)

	other := subscribe(t, c, "t", topics.ResumeAt(page+1, 1)) // not the current page
	assert.Equal(t, uint64(6), other.Stats().Lag)
}

func TestTopicStats(t *testing.T) {
	c := newCache(t, topics.WithRingSize(4))
	tp := typedTopic[int](t, c, "t")
	st := tp.Stats()
	assert.Equal(t, topics.TopicStats{Name: "t"}, st, "a topic not yet used")
	_, ok := c.TopicStats("t")
	assert.False(t, ok)

	fast, err := tp.Subscribe(context.Background())
	require.NoError(t, err)
	defer fast.Close()
	slow, err := tp.Subscribe(context.Background())
	require.NoError(t, err)
	defer slow.Close()
	for i := 1; i <= 10; i++ {
		require.NoError(t, tp.Publish(context.Background(), i))
		next(t, fast)
	}
	st = tp.Stats()
	assert.Equal(t, "t", st.Name)
	assert.NotZero(t, st.Page)
	assert.Equal(t, uint64(10), st.Published)
	assert.Equal(t, 2, st.Subscribers)
	assert.Equal(t, uint64(10), st.Delivered)
	assert.Equal(t, uint64(0), st.Missed)
	assert.Equal(t, uint64(10), st.MaxLag, "the slow subscriber has read nothing")

	next(t, slow) // 7, missed 6
	byName, ok := c.TopicStats("t")
	require.True(t, ok)
	assert.Equal(t, uint64(11), byName.Delivered)
	assert.Equal(t, uint64(6), byName.Missed)
	assert.Equal(t, uint64(3), byName.MaxLag)

	require.NoError(t, slow.Close())
	st = tp.Stats()
	assert.Equal(t, 1, st.Subscribers)
	assert.Equal(t, uint64(11), st.Delivered, "a closed subscription's figures stay in the totals")
	assert.Equal(t, uint64(6), st.Missed)
	assert.Equal(t, uint64(0), st.MaxLag)
}

func TestCacheStats(t *testing.T) {
	c := newCache(t, topics.WithRingSize(2))
	assert.Equal(t, topics.CacheStats{Name: "test-cache"}, c.Stats())

	a := subscribe(t, c, "a")
	b := subscribe(t, c, "b")
	_ = subscribe(t, c, "b")
	publishN(t, c, "a", 3)
	publishN(t, c, "b", 1)
	publishN(t, c, "c", 5) // no subscriber
	next(t, a)             // 2, missed 1
	next(t, b)

	got := c.Stats()
	assert.Equal(t, topics.CacheStats{
		Name:        "test-cache",
		Topics:      3,
		Subscribers: 3,
		Published:   9,
		Delivered:   2,
		Missed:      1,
		MaxLag:      1, // a has 3 to read, the second on b has 1
		Bytes:       5, // one-byte payloads: 2 in a, 1 in b, 2 in c
	}, got)

	all := c.AllTopicStats()
	require.Len(t, all, 3)
	for i, name := range []string{"a", "b", "c"} {
		assert.Equal(t, name, all[i].Name, "sorted by name")
	}
	assert.Equal(t, uint64(5), all[2].Published)
	assert.Equal(t, 0, all[2].Subscribers)
}

// The totals of a topic dropped as idle stay in its cache's figures.
func TestCacheStatsKeepDroppedTopics(t *testing.T) {
	watchdog(t, time.Minute)
	synctest.Test(t, func(t *testing.T) {
		c, err := topics.NewCache("idle", topics.WithTopicIdleTimeout(time.Minute))
		require.NoError(t, err)
		defer c.Close()
		s, err := c.Subscribe(context.Background(), "t")
		require.NoError(t, err)
		publishN(t, c, "t", 3)
		for range 3 {
			next(t, s)
		}
		require.NoError(t, s.Close())
		publishN(t, c, "u", 2)
		before := c.Stats()

		time.Sleep(3 * time.Minute)

		_, ok := c.TopicStats("t")
		require.False(t, ok, "the topics were dropped")
		after := c.Stats()
		assert.Equal(t, 0, after.Topics)
		assert.Equal(t, before.Published, after.Published)
		assert.Equal(t, uint64(5), after.Published)
		assert.Equal(t, uint64(3), after.Delivered)
	})
}

// Stats are cheap: no allocation for a subscription, a topic or a cache.
func TestStatsDoNotAllocate(t *testing.T) {
	c := newCache(t)
	tp := typedTopic[int](t, c, "t")
	s, err := tp.Subscribe(context.Background())
	require.NoError(t, err)
	defer s.Close()
	publishN(t, c, "other", 1)
	require.NoError(t, tp.Publish(context.Background(), 1))
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = s.Stats() }), "Subscription.Stats")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = tp.Stats() }), "Topic.Stats")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = c.TopicStats("t") }), "Cache.TopicStats")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = c.Stats() }), "Cache.Stats")
}

// While publishers and a lapped reader run, every snapshot of a
// subscription is a state it really went through, and no figure goes
// backwards.
func TestStatsConsistentUnderLoad(t *testing.T) {
	const (
		ring  = 2 // the reader is lapped often
		total = 20000
	)
	c := newCache(t, topics.WithRingSize(ring))
	s := subscribe(t, c, "t")

	// The reader records every (delivered, missed) pair it goes through:
	// after each item, and the state just before it counts the item, when
	// it has already counted the items missed before it.
	type pair struct{ d, m uint64 }
	var valid sync.Map
	valid.Store(pair{}, true)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		var d, m uint64
		for d+m < total {
			it, err := s.Next(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			valid.Store(pair{d, m + it.Missed}, true)
			d, m = d+1, m+it.Missed
			valid.Store(pair{d, m}, true)
		}
	}()

	var snaps []topics.SubscriptionStats
	var topicSnaps []topics.TopicStats
	pollerDone := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(pollerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			// Keep the snapshots that differ from the one before: at most
			// two per item read.
			if st := s.Stats(); len(snaps) == 0 || st != snaps[len(snaps)-1] {
				snaps = append(snaps, st)
			}
			if ts, _ := c.TopicStats("t"); len(topicSnaps) == 0 || ts != topicSnaps[len(topicSnaps)-1] {
				topicSnaps = append(topicSnaps, ts)
			}
		}
	}()

	var wg sync.WaitGroup
	for p := range 2 {
		wg.Go(func() {
			for i := range total / 2 {
				if err := c.PublishString(context.Background(), "t", fmt.Sprint(p, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	receive(t, readerDone)
	close(stop)
	receive(t, pollerDone)

	require.NotEmpty(t, snaps)
	var prev topics.SubscriptionStats
	for i, st := range snaps {
		_, ok := valid.Load(pair{st.Delivered, st.Missed})
		require.True(t, ok, "snapshot %d: delivered %d, missed %d is no state the reader went through", i, st.Delivered, st.Missed)
		require.GreaterOrEqual(t, st.Delivered, prev.Delivered)
		require.GreaterOrEqual(t, st.Missed, prev.Missed)
		require.LessOrEqual(t, st.Delivered+st.Missed+st.Lag, uint64(total))
		prev = st
	}
	var prevTopic topics.TopicStats
	for _, ts := range topicSnaps {
		require.GreaterOrEqual(t, ts.Published, prevTopic.Published)
		require.GreaterOrEqual(t, ts.Delivered, prevTopic.Delivered)
		require.GreaterOrEqual(t, ts.Missed, prevTopic.Missed)
		require.LessOrEqual(t, ts.Delivered+ts.Missed, ts.Published)
		prevTopic = ts
	}
	final := s.Stats()
	assert.Equal(t, uint64(total), final.Delivered+final.Missed, "delivered plus missed is what was published")
	assert.Equal(t, uint64(0), final.Lag)
}

func TestEngineStats(t *testing.T) {
	e := topics.New()
	defer e.Close()
	for _, name := range []string{"zeta", "alpha"} {
		c, err := e.CreateCache(name)
		require.NoError(t, err)
		publishN(t, c, "t", len(name))
	}
	st := e.Stats()
	require.Len(t, st, 2)
	assert.Equal(t, "alpha", st[0].Name)
	assert.Equal(t, uint64(5), st[0].Published)
	assert.Equal(t, "zeta", st[1].Name)
	assert.Equal(t, uint64(4), st[1].Published)
}

// A reader working through a backlog publishes its figures in batches; once
// it has caught up they are exact.
func TestSubscriptionStatsBatchedWhileBehind(t *testing.T) {
	c := newCache(t)
	s := subscribe(t, c, "t")
	publishN(t, c, "t", 100)
	for range 40 {
		next(t, s)
	}
	got := s.Stats()
	assert.GreaterOrEqual(t, got.Delivered, uint64(40-31), "trails by fewer than 32 items")
	assert.LessOrEqual(t, got.Delivered, uint64(40))
	assert.Equal(t, uint64(100)-got.Delivered, got.Lag, "Lag agrees with the published count")
	for range 60 {
		next(t, s)
	}
	assert.Equal(t, topics.SubscriptionStats{Topic: "t", Page: got.Page, Delivered: 100}, s.Stats(), "caught up: exact")
}
