package topics_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

func TestPublishAs(t *testing.T) {
	c := newCache(t)
	s := subscribe(t, c, "t")
	v := topics.TextValue("hi")
	require.NoError(t, c.PublishAs(t.Context(), "t", "ada", v))
	require.NoError(t, c.PublishString(t.Context(), "t", "anonymous"))
	it := next(t, s)
	assert.Equal(t, "ada", it.Publisher)
	assert.Equal(t, "hi", it.Value.String())
	assert.True(t, it.Value.IsText())
	assert.Same(t, &v.Bytes()[0], &it.Value.Bytes()[0], "a Value is shared, not copied")
	assert.Empty(t, next(t, s).Publisher)

	err := newCache(t, topics.WithMaxValueSize(1)).PublishAs(t.Context(), "t", "ada", v)
	require.ErrorIs(t, err, topics.ErrValueTooLarge)
	require.ErrorIs(t, c.PublishAs(t.Context(), "bad name", "ada", v), topics.ErrInvalidName)
}

func TestEndAt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t)
		cause := errors.New("credentials expired")
		s := subscribe(t, c, "t", topics.EndAt(time.Now().Add(time.Minute), cause))
		publish(t, c, "t", "before")
		assert.Equal(t, "before", next(t, s).Value.String())

		waiting := nextAsync(t.Context(), s)
		time.Sleep(time.Minute) // the bubble's clock: the end time passes
		r := await(t, waiting)
		require.ErrorIs(t, r.Err, topics.ErrClosed)
		require.ErrorIs(t, r.Err, cause)
		assert.Contains(t, r.Err.Error(), "credentials expired")

		// A time already past refuses the subscription, and counts nothing.
		_, err := c.Subscribe(t.Context(), "t", topics.EndAt(time.Now(), cause))
		require.ErrorIs(t, err, topics.ErrClosed)
		require.ErrorIs(t, err, cause)
		st, _ := c.TopicStats("t")
		assert.Equal(t, 0, st.Subscribers)

		// Without a cause, the error still says why.
		s = subscribe(t, c, "t", topics.EndAt(time.Now().Add(time.Second), nil))
		time.Sleep(time.Second)
		err = nextErr(t, s)
		require.ErrorIs(t, err, topics.ErrClosed)
		assert.Contains(t, err.Error(), "end time")
	})
}

// TestEndAtStoppedByClose: a subscription that ends otherwise keeps that
// end as its reason when its end time passes.
func TestEndAtStoppedByClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t)
		s := subscribe(t, c, "t", topics.EndAt(time.Now().Add(time.Hour), errors.New("late")))
		require.NoError(t, s.Close())
		time.Sleep(2 * time.Hour)
		err := nextErr(t, s)
		assert.NotContains(t, err.Error(), "late", "the first end stays the reason")
	})
}

func TestNoLossless(t *testing.T) {
	c := newCache(t)
	_, err := c.Subscribe(t.Context(), "t", topics.Lossless(), topics.NoLossless())
	require.ErrorIs(t, err, topics.ErrInvalidOption)
	_, err = c.Subscribe(t.Context(), "t", topics.NoLossless(), topics.Lossless())
	require.ErrorIs(t, err, topics.ErrInvalidOption, "in any order")
	st, _ := c.TopicStats("t")
	assert.Equal(t, 0, st.Subscribers)
	subscribe(t, c, "t", topics.NoLossless())
}

// memSequencer is a Sequencer for tests: one sequence per topic, shared by
// every cache that uses it, as JetStream is shared by several processes. It
// feeds every open Feed of the topic from the publishing goroutine, under
// its lock, so each Feed gets its Puts one at a time and in order.
type memSequencer struct {
	mu     sync.Mutex
	page   uint64
	logs   map[string][]memItem // by topic
	feeds  []*topics.Feed
	opened int
	closed int
	err    error // returned by Publish when set
	fail   error // given to Feed.Fail by Open when set
}

type memItem struct {
	publisher string
	v         topics.Value
}

func newMemSequencer() *memSequencer {
	return &memSequencer{page: 1000, logs: make(map[string][]memItem)}
}

func (m *memSequencer) Publish(ctx context.Context, cache, topic, publisher string, v topics.Value) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.logs[topic] = append(m.logs[topic], memItem{publisher, v})
	seq := uint64(len(m.logs[topic]))
	for _, f := range m.feeds {
		if f.Topic() == topic {
			if err := f.Put(ctx, m.page, seq, publisher, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *memSequencer) Open(f *topics.Feed) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.opened++
	if m.fail != nil {
		f.Fail(m.fail)
		return
	}
	log := m.logs[f.Topic()]
	for i, it := range log {
		if err := f.Put(context.Background(), m.page, uint64(i+1), it.publisher, it.v); err != nil {
			panic(err)
		}
	}
	if err := f.Ready(m.page, uint64(len(log))); err != nil {
		panic(err)
	}
	m.feeds = append(m.feeds, f)
}

func (m *memSequencer) Close(f *topics.Feed) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed++
	m.feeds = slices.DeleteFunc(m.feeds, func(g *topics.Feed) bool { return g == f })
}

func (m *memSequencer) counts() (opened, closed int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.opened, m.closed
}

// TestSequencedCachesShareOrder: two caches on one sequencer stand for two
// processes: whatever is published on either reaches subscribers of both,
// as the same items.
func TestSequencedCachesShareOrder(t *testing.T) {
	seq := newMemSequencer()
	a := newCache(t, topics.WithSequencer(seq))
	b := newCache(t, topics.WithSequencer(seq))
	subs := []*topics.Subscription[topics.Value]{subscribe(t, a, "t"), subscribe(t, b, "t"), subscribe(t, b, "t")}
	require.NoError(t, a.PublishString(t.Context(), "t", "one"))
	require.NoError(t, b.PublishAs(t.Context(), "t", "ada", topics.TextValue("two")))
	h, err := topics.TopicOf[topics.Value](a, "t")
	require.NoError(t, err)
	require.NoError(t, h.Publish(t.Context(), topics.BytesValue([]byte("three"))))
	for _, s := range subs {
		for i, want := range []struct {
			v, publisher string
		}{{"one", ""}, {"two", "ada"}, {"three", ""}} {
			it := next(t, s)
			assert.Equal(t, uint64(1000), it.Page)
			assert.Equal(t, uint64(i+1), it.Sequence)
			assert.Equal(t, want.v, it.Value.String())
			assert.Equal(t, want.publisher, it.Publisher)
			assert.Zero(t, it.Missed)
		}
	}
	opened, _ := seq.counts()
	assert.Equal(t, 2, opened, "one feed per topic per cache, whatever the subscribers")
	st, ok := b.TopicStats("t")
	require.True(t, ok)
	assert.Equal(t, uint64(1000), st.Page)
	assert.Equal(t, uint64(3), st.Published)
	assert.Equal(t, 2, st.Subscribers)
	assert.Equal(t, uint64(6), st.Delivered)
}

func TestSequencedRefusesTypedTopics(t *testing.T) {
	c := newCache(t, topics.WithSequencer(newMemSequencer()))
	_, err := topics.TopicOf[int](c, "ints")
	require.ErrorIs(t, err, topics.ErrTopicType)
	assert.Contains(t, err.Error(), "topics.Value only")
	_, err = topics.TopicOf[topics.Value](c, "values")
	require.NoError(t, err)
}

// TestFeedGapsAndPages: a gap in a feed's sequences and a new page reach
// subscribers as Missed, counted in the items of the page.
func TestFeedGapsAndPages(t *testing.T) {
	seq := newMemSequencer()
	c := newCache(t, topics.WithSequencer(seq))
	s := subscribe(t, c, "t")
	feed := seq.feeds[0]
	ctx := t.Context()
	put := func(page, sequence uint64, v string) {
		t.Helper()
		require.NoError(t, feed.Put(ctx, page, sequence, "", topics.TextValue(v)))
	}
	put(1000, 1, "a")
	put(1000, 2, "b")
	put(1000, 5, "e") // 3 and 4 never reached this process
	put(1000, 6, "f")
	put(2000, 3, "x") // a new page, whose first two items were lost here
	put(2000, 4, "y")
	want := []struct {
		page, seq, missed uint64
		v                 string
	}{{1000, 1, 0, "a"}, {1000, 2, 0, "b"}, {1000, 5, 2, "e"}, {1000, 6, 0, "f"}, {2000, 3, 2, "x"}, {2000, 4, 0, "y"}}
	for _, w := range want {
		it := next(t, s)
		assert.Equal(t, w.v, it.Value.String())
		assert.Equal(t, [3]uint64{w.page, w.seq, w.missed}, [3]uint64{it.Page, it.Sequence, it.Missed}, "item %s", w.v)
	}
	st := s.Stats()
	assert.Equal(t, uint64(6), st.Delivered)
	assert.Equal(t, uint64(4), st.Missed)
	assert.Zero(t, st.Lag, "Lag counts what is left to read, gaps or not")
	assert.Equal(t, uint64(2000), st.Page)

	// Out of order is refused, and so are pages out of range.
	for _, bad := range [][2]uint64{{2000, 4}, {2000, 2}, {1000, 7}, {0, 1}, {topics.MaxPage + 1, 1}, {3000, 0}} {
		err := feed.Put(ctx, bad[0], bad[1], "", topics.Value{})
		require.ErrorIs(t, err, topics.ErrInvalidOption, "%d:%d", bad[0], bad[1])
	}
	put(3000, 1, "z")
	assert.Equal(t, [2]uint64{3000, 1}, func() [2]uint64 { it := next(t, s); return [2]uint64{it.Page, it.Sequence} }())
}

// Feed.Put refuses a nil Context as every call that takes one does, having
// put nothing.
func TestFeedPutNilContext(t *testing.T) {
	seq := newMemSequencer()
	c := newCache(t, topics.WithSequencer(seq))
	s := subscribe(t, c, "t")
	feed := seq.feeds[0]
	var none context.Context
	assert.PanicsWithValue(t, "topics: nil Context", func() { _ = feed.Put(none, 1000, 1, "", topics.TextValue("lost")) })
	require.NoError(t, feed.Put(t.Context(), 1000, 1, "", topics.TextValue("a")))
	it := next(t, s)
	assert.Equal(t, "a", it.Value.String())
	assert.Equal(t, uint64(1), it.Sequence)
}

// TestFeedLappedAcrossSegments: a reader lapped over a gap and a page
// change counts exactly the items of its page it lost.
func TestFeedLappedAcrossSegments(t *testing.T) {
	seq := newMemSequencer()
	c := newCache(t, topics.WithSequencer(seq), topics.WithRingSize(4))
	s := subscribe(t, c, "t")
	feed := seq.feeds[0]
	ctx := t.Context()
	for i := uint64(1); i <= 3; i++ {
		require.NoError(t, feed.Put(ctx, 1007, i, "", topics.Value{}))
	}
	require.NoError(t, feed.Put(ctx, 1007, 10, "", topics.Value{})) // gap 4-9
	for i := uint64(11); i <= 13; i++ {
		require.NoError(t, feed.Put(ctx, 1007, i, "", topics.Value{}))
	}
	// The ring holds 10-13; the reader never read anything of page 7.
	it := next(t, s)
	assert.Equal(t, [3]uint64{1007, 10, 9}, [3]uint64{it.Page, it.Sequence, it.Missed})

	for i := uint64(14); i <= 15; i++ {
		require.NoError(t, feed.Put(ctx, 1007, i, "", topics.Value{}))
	}
	for i := uint64(1); i <= 4; i++ {
		require.NoError(t, feed.Put(ctx, 1008, i+4, "", topics.Value{}))
	}
	// Page 8 holds 5-8 in the ring; 1-4 of page 8 never came, the rest of
	// page 7 was lapped: Missed counts page 8's.
	it = next(t, s)
	assert.Equal(t, [3]uint64{1008, 5, 4}, [3]uint64{it.Page, it.Sequence, it.Missed})
}

func TestFeedResume(t *testing.T) {
	seq := newMemSequencer()
	c := newCache(t, topics.WithSequencer(seq), topics.WithRingSize(8))
	for i := range 12 {
		publish(t, c, "t", string(rune('a'+i))) // not opened here yet: only the log grows
	}
	// The first subscription opens the feed, which puts the log (items
	// 5-12 stay in the ring of 8) and is ready at 12.
	live := subscribe(t, c, "t")
	publish(t, c, "t", "m")
	assert.Equal(t, uint64(13), next(t, live).Sequence)

	for _, tc := range []struct {
		desc              string
		page, seq         uint64
		wantSeq, wantMiss uint64
	}{
		{"within the window", 1000, 9, 9, 0},
		{"before the window", 1000, 2, 6, 4},
		{"another page", 999, 9, 6, 5},
		{"beyond the newest", 1000, 20, 0, 0},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			s := subscribe(t, c, "t", topics.ResumeAt(tc.page, tc.seq))
			if tc.wantSeq == 0 {
				publish(t, c, "t", "later")
				it := next(t, s)
				assert.Equal(t, "later", it.Value.String())
				assert.Zero(t, it.Missed)
				return
			}
			it := next(t, s)
			assert.Equal(t, [3]uint64{1000, tc.wantSeq, tc.wantMiss}, [3]uint64{it.Page, it.Sequence, it.Missed})
		})
	}
}

func TestFeedResumeIntoGap(t *testing.T) {
	seq := newMemSequencer()
	c := newCache(t, topics.WithSequencer(seq))
	subscribe(t, c, "t")
	feed := seq.feeds[0]
	for _, n := range []uint64{1, 2, 6, 7} {
		require.NoError(t, feed.Put(t.Context(), 1005, n, "", topics.Value{}))
	}
	s := subscribe(t, c, "t", topics.ResumeAt(1005, 4))
	it := next(t, s)
	assert.Equal(t, [2]uint64{6, 2}, [2]uint64{it.Sequence, it.Missed}, "4 and 5 are lost")
}

// TestFeedReady: subscriptions wait for Ready, bounded by their context;
// Fail refuses them and lets the next use open the topic again.
func TestFeedReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &slowSequencer{memSequencer: newMemSequencer(), pending: make(chan *topics.Feed, 4)}
		c := newCache(t, topics.WithSequencer(s))

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := c.Subscribe(ctx, "t")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		f := <-s.pending
		st, _ := c.TopicStats("t")
		assert.Equal(t, 0, st.Subscribers, "the refused subscription is not counted")

		done := make(chan error, 1)
		go func() {
			sub, err := c.Subscribe(t.Context(), "t")
			if err == nil {
				sub.Close()
			}
			done <- err
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Subscribe returned %v before Ready", err)
		default:
		}
		assert.Empty(t, s.pending, "Open is called once per topic")
		require.NoError(t, f.Ready(3, 0))
		require.NoError(t, <-done)
		require.ErrorIs(t, f.Ready(3, 0), topics.ErrInvalidOption, "Ready once")

		// Fail: the waiting subscription fails, and the topic is opened
		// afresh by the next one.
		go func() {
			_, err := c.Subscribe(t.Context(), "u")
			done <- err
		}()
		f = <-s.pending
		cause := errors.New("no sequencer reachable")
		f.Fail(cause)
		err = <-done
		require.ErrorIs(t, err, cause)
		assert.Contains(t, err.Error(), `topic "u"`)
		require.ErrorIs(t, f.Put(t.Context(), 3, 1, "", topics.Value{}), topics.ErrClosed)
		_, ok := c.TopicStats("u")
		assert.False(t, ok, "the cache forgot the topic")
		go func() {
			_, err := c.Subscribe(t.Context(), "u")
			done <- err
		}()
		g := <-s.pending
		assert.NotSame(t, f, g, "a new feed")
		require.NoError(t, g.Ready(4, 0))
		require.NoError(t, <-done)
	})
}

// slowSequencer hands feeds to the test instead of making them ready.
type slowSequencer struct {
	*memSequencer
	pending chan *topics.Feed
}

func (s *slowSequencer) Open(f *topics.Feed) { s.pending <- f }

// TestFeedClosed: the sequencer hears of every topic the cache drops or
// closes, and Put refuses from then on; a subscription waiting for Ready
// ends with the cache.
func TestFeedClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seq := newMemSequencer()
		c := newCache(t, topics.WithSequencer(seq), topics.WithTopicIdleTimeout(time.Minute))
		s := subscribe(t, c, "idle")
		f := seq.feeds[0]
		require.NoError(t, s.Close())
		time.Sleep(3 * time.Minute)
		_, closed := seq.counts()
		assert.Equal(t, 1, closed, "dropped as idle")
		require.ErrorIs(t, f.Put(t.Context(), 1000, 1, "", topics.Value{}), topics.ErrClosed)

		// A publish-only topic is never opened, and dropped all the same.
		publish(t, c, "published", "x")
		opened, _ := seq.counts()
		assert.Equal(t, 1, opened)

		subscribe(t, c, "open")
		slow := &slowSequencer{memSequencer: seq, pending: make(chan *topics.Feed, 1)}
		d := newCache(t, topics.WithSequencer(slow))
		waiting := make(chan error, 1)
		go func() {
			_, err := d.Subscribe(t.Context(), "t")
			waiting <- err
		}()
		<-slow.pending
		require.NoError(t, d.Close())
		require.ErrorIs(t, <-waiting, topics.ErrClosed)

		require.NoError(t, c.Close())
		opened, closed = seq.counts()
		assert.Equal(t, 2, opened, "idle and open (the slow sequencer counts none)")
		assert.Equal(t, 3, closed, "idle, d's opened topic, open")
		assert.Empty(t, seq.feeds)
	})
}

func TestSequencerErrors(t *testing.T) {
	seq := newMemSequencer()
	c := newCache(t, topics.WithSequencer(seq), topics.WithPublishRate(1, 1))
	seq.err = errors.New("unreachable")
	require.ErrorIs(t, c.PublishString(t.Context(), "t", "x"), seq.err)
	seq.err = nil
	require.NoError(t, c.PublishString(t.Context(), "t", "x"), "the failed publish gave its rate token back")
	_, err := topics.NewCache("c", topics.WithSequencer(nil))
	require.ErrorIs(t, err, topics.ErrInvalidOption)
}

// TestFeedLossless: a Lossless subscription of a fed topic holds up the
// feed, not the sequencer's other processes.
func TestFeedLossless(t *testing.T) {
	seq := newMemSequencer()
	c := newCache(t, topics.WithSequencer(seq), topics.WithRingSize(2))
	s := subscribe(t, c, "t", topics.Lossless())
	f := seq.feeds[0]
	for i := uint64(1); i <= 2; i++ {
		require.NoError(t, f.Put(t.Context(), 1001, i, "", topics.Value{}))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, f.Put(ctx, 1001, 3, "", topics.Value{}), context.DeadlineExceeded)
	assert.Equal(t, uint64(1), next(t, s).Sequence)
	require.NoError(t, f.Put(t.Context(), 1001, 3, "", topics.Value{}), "the failed Put can be retried")
	for want := uint64(2); want <= 3; want++ {
		it := next(t, s)
		assert.Equal(t, [2]uint64{want, 0}, [2]uint64{it.Sequence, it.Missed})
	}
}
