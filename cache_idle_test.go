package topics_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

// Inside these synctest bubbles time is fake: time.Sleep only lets the
// bubble's clock run, so the idle timeouts pass at once.

const idle = time.Minute

// idleCache creates a cache with the idle timeout inside the current bubble.
func idleCache(t *testing.T, opts ...topics.Option) *topics.Cache {
	t.Helper()
	c, err := topics.NewCache("idle", append([]topics.Option{topics.WithTopicIdleTimeout(idle)}, opts...)...)
	require.NoError(t, err)
	return c
}

// idleTest runs body in a synctest bubble, under a real-time watchdog, with
// a cache from idleCache that is closed when body returns.
func idleTest(t *testing.T, body func(t *testing.T, c *topics.Cache)) {
	t.Helper()
	watchdog(t, time.Minute)
	synctest.Test(t, func(t *testing.T) {
		c := idleCache(t)
		defer c.Close()
		body(t, c)
	})
}

// observe subscribes to topic, publishes value and returns the item the
// subscription got, closing it again.
func observe(t *testing.T, c *topics.Cache, topic, value string) topics.Item[topics.Value] {
	t.Helper()
	s, err := c.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	defer s.Close()
	publish(t, c, topic, value)
	return next(t, s)
}

func TestIdleTopicDropped(t *testing.T) {
	idleTest(t, func(t *testing.T, c *topics.Cache) {
		first := observe(t, c, "t", "a")
		require.Equal(t, uint64(1), first.Sequence)

		time.Sleep(2*idle + time.Second)

		// A fresh subscription finds a new topic: new, greater page, and
		// sequences starting again at 1.
		it := observe(t, c, "t", "b")
		assert.Greater(t, it.Page, first.Page, "a re-created topic gets a greater page")
		assert.Equal(t, uint64(1), it.Sequence)
		assert.Equal(t, uint64(0), it.Missed)
	})
}

func TestIdleTopicDroppedResume(t *testing.T) {
	idleTest(t, func(t *testing.T, c *topics.Cache) {
		first := observe(t, c, "t", "a")
		publish(t, c, "t", "b") // sequence 2, with no subscriber

		time.Sleep(2*idle + time.Second)

		// Resuming after the old page's last item: the page is gone, so
		// the subscription starts at the new page's first item.
		s, err := c.Subscribe(context.Background(), "t", topics.ResumeAt(first.Page, 3))
		require.NoError(t, err)
		defer s.Close()
		publish(t, c, "t", "c")
		it := next(t, s)
		assert.Greater(t, it.Page, first.Page)
		assert.Equal(t, uint64(1), it.Sequence)
		assert.Equal(t, uint64(0), it.Missed)
		assert.Equal(t, "c", it.Value.String(), "nothing of the old page is delivered")
	})
}

func TestIdleTopicKeptBeforeTimeout(t *testing.T) {
	idleTest(t, func(t *testing.T, c *topics.Cache) {
		first := observe(t, c, "t", "a")

		time.Sleep(idle - time.Second)

		s, err := c.Subscribe(context.Background(), "t", topics.ResumeAt(first.Page, 1))
		require.NoError(t, err)
		defer s.Close()
		it := next(t, s)
		assert.Equal(t, first.Page, it.Page, "not dropped before the idle timeout")
		assert.Equal(t, uint64(1), it.Sequence)
		assert.Equal(t, "a", it.Value.String())
	})
}

func TestIdleTopicKeptByPublishes(t *testing.T) {
	idleTest(t, func(t *testing.T, c *topics.Cache) {
		first := observe(t, c, "t", "a")
		for range 12 {
			time.Sleep(idle / 2)
			publish(t, c, "t", "keepalive")
		}
		it := observe(t, c, "t", "b")
		assert.Equal(t, first.Page, it.Page, "a topic that gets publishes is not idle")
		assert.Equal(t, uint64(14), it.Sequence)
	})
}

func TestIdleTopicWithSubscriberNeverDropped(t *testing.T) {
	idleTest(t, func(t *testing.T, c *topics.Cache) {
		s, err := c.Subscribe(context.Background(), "t")
		require.NoError(t, err)
		defer s.Close()
		// Other topics come and go meanwhile, keeping the sweeper busy.
		publish(t, c, "other", "x")
		publish(t, c, "t", "a")
		first := next(t, s)

		for range 10 {
			time.Sleep(idle)
			publish(t, c, "other", "x")
		}
		time.Sleep(10 * idle)

		publish(t, c, "t", "b")
		it := next(t, s)
		assert.Equal(t, first.Page, it.Page, "a topic with a subscriber is never dropped")
		assert.Equal(t, uint64(2), it.Sequence)
		assert.Equal(t, uint64(0), it.Missed)

		fresh := observe(t, c, "t", "c")
		assert.Equal(t, first.Page, fresh.Page)
		assert.Equal(t, uint64(3), fresh.Sequence)
	})
}

func TestIdleTopicWithoutSubscribersEverDropped(t *testing.T) {
	idleTest(t, func(t *testing.T, c *topics.Cache) {
		ctx := context.Background()
		h, err := topics.TopicOf[int](c, "t")
		require.NoError(t, err)
		require.NoError(t, h.Publish(ctx, 1)) // creates the topic; nobody subscribes

		time.Sleep(2*idle + time.Second)

		// The handle publishes into a new topic: a subscriber resuming
		// from the very start of any page sees only the new item.
		require.NoError(t, h.Publish(ctx, 2))
		s, err := h.Subscribe(ctx, topics.ResumeAt(0, 1))
		require.NoError(t, err)
		defer s.Close()
		it := next(t, s)
		assert.Equal(t, 2, it.Value)
		assert.Equal(t, uint64(1), it.Sequence)
		assert.Equal(t, uint64(0), it.Missed)
	})
}

func TestIdleTypedHandleFollowsNewPage(t *testing.T) {
	idleTest(t, func(t *testing.T, c *topics.Cache) {
		ctx := context.Background()
		h, err := topics.TopicOf[int](c, "t")
		require.NoError(t, err)
		s, err := h.Subscribe(ctx)
		require.NoError(t, err)
		require.NoError(t, h.Publish(ctx, 1))
		first := next(t, s)
		require.NoError(t, s.Close())

		time.Sleep(2*idle + time.Second)

		require.NoError(t, h.Publish(ctx, 2)) // re-creates the topic
		s2, err := h.Subscribe(ctx, topics.ResumeAt(first.Page, 2))
		require.NoError(t, err)
		defer s2.Close()
		it := next(t, s2)
		assert.Greater(t, it.Page, first.Page)
		assert.Equal(t, uint64(1), it.Sequence)
		assert.Equal(t, uint64(0), it.Missed)
		assert.Equal(t, 2, it.Value)

		// Dropped again, the name may come back with another type, and the
		// old handle says so.
		require.NoError(t, s2.Close())
		time.Sleep(2*idle + time.Second)
		hs, err := topics.TopicOf[string](c, "t")
		require.NoError(t, err)
		require.NoError(t, hs.Publish(ctx, "now strings"))
		const want = `topics: topic carries another type: topic "t" of cache "idle" carries string, not int`
		require.EqualError(t, h.Publish(ctx, 3), want)
		_, err = h.Subscribe(ctx)
		require.EqualError(t, err, want)
		_, err = topics.TopicOf[int](c, "t") // checked at once now that it exists
		require.EqualError(t, err, want)
	})
}

func TestIdleDropFreesTopicSlot(t *testing.T) {
	watchdog(t, time.Minute)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := idleCache(t, topics.WithMaxTopics(1))
		defer c.Close()
		publish(t, c, "a", "x")
		require.ErrorIs(t, c.PublishString(ctx, "b", "x"), topics.ErrLimitExceeded)
		time.Sleep(2*idle + time.Second)
		require.NoError(t, c.PublishString(ctx, "b", "x"), "the idle topic was dropped and its slot freed")
	})
}
