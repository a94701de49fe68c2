package topics_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

func requireLimit(t *testing.T, err error, cache, limit string, max int) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, topics.ErrLimitExceeded)
	var le *topics.LimitError
	require.True(t, errors.As(err, &le), "errors.As(%v, *LimitError)", err)
	assert.Equal(t, limit, le.Limit)
	assert.Equal(t, max, le.Max)
	assert.Equal(t, cache, le.Cache)
}

func TestMaxSubscribers(t *testing.T) {
	const n = 3
	ctx := context.Background()
	c := newCache(t, topics.WithMaxSubscribers(n))
	// The limit is per cache, across topics and typed handles.
	s1 := subscribe(t, c, "a")
	s2 := subscribe(t, c, "b")
	h, err := topics.TopicOf[int](c, "typed")
	require.NoError(t, err)
	s3, err := h.Subscribe(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s3.Close() })

	for _, topic := range []string{"a", "b", "new"} {
		s, err := c.Subscribe(ctx, topic)
		requireLimit(t, err, "test-cache", "MaxSubscribers", n)
		assert.Nil(t, s)
	}
	si, err := h.Subscribe(ctx)
	requireLimit(t, err, "test-cache", "MaxSubscribers", n)
	assert.Nil(t, si)

	// Closing one frees a slot, once.
	require.NoError(t, s2.Close())
	require.NoError(t, s2.Close())
	s4 := subscribe(t, c, "c")
	_, err = c.Subscribe(ctx, "d")
	requireLimit(t, err, "test-cache", "MaxSubscribers", n)

	// The others work as before.
	publish(t, c, "a", "x")
	assert.Equal(t, "x", next(t, s1).Value.String())
	publish(t, c, "c", "y")
	assert.Equal(t, "y", next(t, s4).Value.String())
}

func TestMaxSubscribersFreedByAll(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, topics.WithMaxSubscribers(1))
	s := subscribe(t, c, "t")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for _, err := range s.All(cctx) {
		require.ErrorIs(t, err, context.Canceled)
	}
	subscribe(t, c, "t") // All closed s and freed its slot
}

func TestMaxTopics(t *testing.T) {
	const n = 2
	ctx := context.Background()
	c := newCache(t, topics.WithMaxTopics(n))
	publish(t, c, "a", "a1")                       // created by a publish
	sb := subscribe(t, c, "b")                     // created by a subscribe
	sa := subscribe(t, c, "a")                     // existing topic: no new one
	publish(t, c, "b", "b1")                       // existing
	h, err := topics.TopicOf[topics.Value](c, "c") // a handle creates nothing
	require.NoError(t, err)

	requireLimit(t, c.PublishString(ctx, "c", "x"), "test-cache", "MaxTopics", n)
	requireLimit(t, c.Publish(ctx, "c", []byte("x")), "test-cache", "MaxTopics", n)
	requireLimit(t, h.Publish(ctx, topics.TextValue("x")), "test-cache", "MaxTopics", n)
	s, err := c.Subscribe(ctx, "c")
	requireLimit(t, err, "test-cache", "MaxTopics", n)
	assert.Nil(t, s)
	_, err = h.Subscribe(ctx)
	requireLimit(t, err, "test-cache", "MaxTopics", n)
	hi, err := topics.TopicOf[int](c, "d")
	require.NoError(t, err)
	requireLimit(t, hi.Publish(ctx, 1), "test-cache", "MaxTopics", n)

	// Existing topics still work.
	assert.Equal(t, "b1", next(t, sb).Value.String())
	publish(t, c, "a", "a2")
	it := next(t, sa)
	assert.Equal(t, "a2", it.Value.String())
	assert.Equal(t, uint64(2), it.Sequence)
	publish(t, c, "b", "b2")
	assert.Equal(t, "b2", next(t, sb).Value.String())
}

// A refused Subscribe leaves nothing behind: no topic, no subscriber slot.
func TestRefusedSubscribeLeavesNothing(t *testing.T) {
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	refusals := []struct {
		desc    string
		refuse  func(c *topics.Cache) error
		wantErr error
	}{
		{"cancelled context", func(c *topics.Cache) error {
			_, err := c.Subscribe(cancelled, "new")
			return err
		}, context.Canceled},
		{"nil option", func(c *topics.Cache) error {
			_, err := c.Subscribe(ctx, "new", nil)
			return err
		}, topics.ErrInvalidOption},
		{"invalid name", func(c *topics.Cache) error {
			_, err := c.Subscribe(ctx, "new topic")
			return err
		}, topics.ErrInvalidName},
		{"topic type", func(c *topics.Cache) error {
			_, err := c.Subscribe(ctx, "ints")
			return err
		}, topics.ErrTopicType},
		{"typed handle, cancelled context", func(c *topics.Cache) error {
			h, err := topics.TopicOf[string](c, "new")
			if err != nil {
				return err
			}
			_, err = h.Subscribe(cancelled)
			return err
		}, context.Canceled},
	}
	for _, r := range refusals {
		t.Run(r.desc, func(t *testing.T) {
			// One topic ("ints") and room for exactly one more, one subscriber.
			c := newCache(t, topics.WithMaxTopics(2), topics.WithMaxSubscribers(1))
			hi, err := topics.TopicOf[int](c, "ints")
			require.NoError(t, err)
			require.NoError(t, hi.Publish(ctx, 1))
			for range 3 {
				require.ErrorIs(t, r.refuse(c), r.wantErr)
			}
			// The subscriber slot is free, and so is the topic slot: "other"
			// can still be created, which it could not be had "new" been.
			s := subscribe(t, c, "other")
			publish(t, c, "other", "x")
			assert.Equal(t, "x", next(t, s).Value.String())
		})
	}
}

func TestSubscribeRefusedByMaxTopicsKeepsSlot(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, topics.WithMaxTopics(1), topics.WithMaxSubscribers(1))
	publish(t, c, "a", "x")
	for range 5 {
		_, err := c.Subscribe(ctx, "b")
		requireLimit(t, err, "test-cache", "MaxTopics", 1)
	}
	s := subscribe(t, c, "a") // the one slot is still free
	_, err := c.Subscribe(ctx, "a")
	requireLimit(t, err, "test-cache", "MaxSubscribers", 1)
	publish(t, c, "a", "y")
	assert.Equal(t, "y", next(t, s).Value.String())
}

func TestMaxValueSize(t *testing.T) {
	const limit = 8
	ctx := context.Background()
	c := newCache(t, topics.WithMaxValueSize(limit))
	s := subscribe(t, c, "t")
	h, err := topics.TopicOf[topics.Value](c, "t")
	require.NoError(t, err)
	at := strings.Repeat("x", limit)
	over := strings.Repeat("y", limit+1)

	require.NoError(t, c.Publish(ctx, "t", []byte(at)), "exactly at the limit")
	require.NoError(t, c.PublishString(ctx, "t", at))
	require.NoError(t, h.Publish(ctx, topics.BytesValue([]byte(at))))
	require.NoError(t, h.Publish(ctx, topics.TextValue(at)))

	refused := []error{
		c.Publish(ctx, "t", []byte(over)),
		c.PublishString(ctx, "t", over),
		h.Publish(ctx, topics.BytesValue([]byte(over))),
		h.Publish(ctx, topics.TextValue(over)),
		c.PublishString(ctx, "t", strings.Repeat("z", 10*limit)),
	}
	for i, err := range refused {
		require.ErrorIs(t, err, topics.ErrValueTooLarge, "refusal %d", i)
	}
	// Nothing refused was published: the items at the limit come with
	// sequences 1..4 and the next publish gets 5.
	publish(t, c, "t", "after")
	for seq := uint64(1); seq <= 4; seq++ {
		it := next(t, s)
		assert.Equal(t, seq, it.Sequence)
		assert.Equal(t, uint64(0), it.Missed)
		assert.Equal(t, at, it.Value.String())
	}
	it := next(t, s)
	assert.Equal(t, uint64(5), it.Sequence)
	assert.Equal(t, uint64(0), it.Missed)
	assert.Equal(t, "after", it.Value.String())
}

func TestMaxValueSizeRefusalCreatesNoTopic(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, topics.WithMaxValueSize(4), topics.WithMaxTopics(1))
	require.ErrorIs(t, c.PublishString(ctx, "big", "too big"), topics.ErrValueTooLarge)
	publish(t, c, "small", "ok") // the only topic slot was still free
}

func TestRefusedPublishTakesNoSequence(t *testing.T) {
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	c := newCache(t, topics.WithMaxValueSize(4), topics.WithMaxTopics(1))
	s := subscribe(t, c, "t")
	h, err := topics.TopicOf[topics.Value](c, "t")
	require.NoError(t, err)

	publish(t, c, "t", "one")
	require.ErrorIs(t, c.PublishString(ctx, "t", "toolarge"), topics.ErrValueTooLarge)
	require.ErrorIs(t, c.PublishString(cancelled, "t", "x"), context.Canceled)
	require.ErrorIs(t, c.Publish(cancelled, "t", []byte("x")), context.Canceled)
	require.ErrorIs(t, h.Publish(cancelled, topics.TextValue("x")), context.Canceled)
	require.ErrorIs(t, h.Publish(ctx, topics.TextValue("toolarge")), topics.ErrValueTooLarge)
	require.ErrorIs(t, c.PublishString(ctx, "other", "x"), topics.ErrLimitExceeded)
	publish(t, c, "t", "two")

	it := next(t, s)
	assert.Equal(t, uint64(1), it.Sequence)
	assert.Equal(t, "one", it.Value.String())
	it = next(t, s)
	assert.Equal(t, uint64(2), it.Sequence, "refused publishes took no sequence number")
	assert.Equal(t, uint64(0), it.Missed)
	assert.Equal(t, "two", it.Value.String())
}

func TestMaxSubscribersFreedBySubscribeContext(t *testing.T) {
	c := newCache(t, topics.WithMaxSubscribers(1))
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.Subscribe(ctx, "t")
	require.NoError(t, err)
	defer s.Close()
	cancel()
	requireEnded(t, nextErr(t, s), []error{topics.ErrClosed, context.Canceled})
	// The subscription has ended without Close: its slot is free (the end
	// is noticed asynchronously, so allow it a moment).
	deadline := time.Now().Add(waitLimit)
	for {
		s2, err := c.Subscribe(context.Background(), "t")
		if err == nil {
			require.NoError(t, s2.Close())
			return
		}
		requireLimit(t, err, "test-cache", "MaxSubscribers", 1)
		require.True(t, time.Now().Before(deadline), "the slot of a subscription ended by its context was not freed")
		<-time.After(time.Millisecond)
	}
}

// TestMaxBytes: the payloads a cache's Value topics hold are bounded: a
// publish that would go over the budget is refused and publishes nothing,
// and room comes back as rings overwrite old items or topics are dropped.
// (Without a budget, 256 publishes of 1 MiB to a topic nobody reads kept
// 256 MiB alive.)
func TestMaxBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, topics.WithMaxBytes(1000), topics.WithRingSize(4), topics.WithTopicIdleTimeout(time.Minute))
		ctx := t.Context()
		payload := make([]byte, 300)
		require.NoError(t, c.Publish(ctx, "a", payload))
		require.NoError(t, c.Publish(ctx, "a", payload))
		require.NoError(t, c.Publish(ctx, "b", payload))
		assert.Equal(t, int64(900), c.Stats().Bytes)

		err := c.Publish(ctx, "b", payload)
		requireLimit(t, err, "test-cache", "MaxBytes", 1000)
		h, err := topics.TopicOf[topics.Value](c, "b")
		require.NoError(t, err)
		requireLimit(t, h.Publish(ctx, topics.BytesValue(payload)), "test-cache", "MaxBytes", 1000)
		st, _ := c.TopicStats("b")
		assert.Equal(t, uint64(1), st.Published, "a refused publish takes no sequence")

		// Small items fit, and a ring that wraps frees what it overwrites.
		for range 8 {
			require.NoError(t, c.PublishString(ctx, "b", "tiny"))
		}
		assert.Equal(t, int64(600+4*4), c.Stats().Bytes, "b holds its 4 newest items")
		require.NoError(t, c.Publish(ctx, "b", payload))

		// A dropped topic gives its bytes back.
		time.Sleep(3 * time.Minute)
		assert.Zero(t, c.Stats().Bytes)

		// Typed topics are not counted.
		ints, err := topics.TopicOf[[]byte](c, "raw")
		require.NoError(t, err)
		for range 10 {
			require.NoError(t, ints.Publish(ctx, payload))
		}
		assert.Zero(t, c.Stats().Bytes)
	})
}

func TestMaxBytesOptions(t *testing.T) {
	_, err := topics.NewCache("c", topics.WithMaxBytes(0))
	require.ErrorIs(t, err, topics.ErrInvalidOption)
	c := newCache(t, topics.WithMaxBytes(math.MaxInt64))
	require.NoError(t, c.Publish(t.Context(), "t", make([]byte, 1<<20)))
	assert.Zero(t, c.Stats().Bytes, "no budget, nothing counted")
	assert.Equal(t, int64(topics.DefaultMaxBytes), int64(256<<20))
}
