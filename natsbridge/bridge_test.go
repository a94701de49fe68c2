package natsbridge_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/natsbridge"
	"github.com/ringbus/topics/natsbridge/internal/natstest"
	"github.com/ringbus/topics/topicstest"
)

// TestSharedTopic: three processes, one per server; whatever any of them
// publishes reaches the subscribers of all of them as the same items, in
// the same order.
func TestSharedTopic(t *testing.T) {
	c := natstest.NewCluster(t, 3)
	var caches []*topics.Cache
	var subs []*topics.Subscription[topics.Value]
	for i := range 3 {
		p := newProcess(t, c, i)
		cache := p.cache(t, "chat")
		caches = append(caches, cache)
		subs = append(subs, subscribe(t, cache, "room/lobby"), subscribe(t, cache, "room/lobby"))
	}
	for round := range 3 {
		for i, cache := range caches {
			publish(t, cache, "room/lobby", fmt.Sprintf("%d from %d", round, i))
		}
	}
	var first []topics.Item[topics.Value]
	for si, s := range subs {
		var got []topics.Item[topics.Value]
		for range 9 {
			got = append(got, next(t, s))
		}
		for i, it := range got {
			assert.Equal(t, uint64(i+1), it.Sequence)
			assert.Zero(t, it.Missed)
			assert.Equal(t, got[0].Page, it.Page)
			assert.True(t, it.Value.IsText())
		}
		if si == 0 {
			first = got
			continue
		}
		require.Equal(t, first, got, "subscriber %d", si)
	}
}

// TestResumeOnAnotherProcess: a reader that saw items on one process
// resumes on another, which had never opened the topic, from the page and
// sequence it saw last: it gets what followed, once each, and nothing is
// lost. Resuming from before the window reports what is gone as missed.
func TestResumeOnAnotherProcess(t *testing.T) {
	const window = 8
	c := natstest.NewCluster(t, 3)
	a, b, other := newProcess(t, c, 0, natsbridge.WithWindow(window)), newProcess(t, c, 1, natsbridge.WithWindow(window)), newProcess(t, c, 2, natsbridge.WithWindow(window))
	ca := a.cache(t, "chat")
	sa := subscribe(t, ca, "room")
	for i := 1; i <= 6; i++ {
		publish(t, ca, "room", fmt.Sprint(i))
	}
	var seen topics.Item[topics.Value]
	for range 3 {
		seen = next(t, sa) // the reader got 1, 2, 3, then moved
	}
	sb := subscribe(t, b.cache(t, "chat"), "room", topics.ResumeAt(seen.Page, seen.Sequence+1))
	for i := 4; i <= 6; i++ {
		it := next(t, sb)
		assert.Equal(t, fmt.Sprint(i), it.Value.String())
		assert.Equal(t, seen.Page, it.Page)
		assert.Equal(t, uint64(i), it.Sequence)
		assert.Zero(t, it.Missed)
	}
	publish(t, b.cache(t, "chat"), "room", "7")
	assert.Equal(t, "7", next(t, sb).Value.String())

	// Without ResumeAt, a new subscription starts after the newest item.
	fresh := subscribe(t, other.cache(t, "chat"), "room")
	publish(t, ca, "room", "8")
	assert.Equal(t, "8", next(t, fresh).Value.String())

	// The window holds 8 items: 1 and 2 are gone once 10 are published
	// (and have reached the other processes: their subscriptions read
	// them).
	publish(t, ca, "room", "9")
	publish(t, ca, "room", "10")
	for _, s := range []*topics.Subscription[topics.Value]{fresh, sb} {
		var it topics.Item[topics.Value]
		for it.Value.String() != "10" {
			it = next(t, s)
		}
	}
	old := subscribe(t, other.cache(t, "chat"), "room", topics.ResumeAt(seen.Page, 1))
	it := next(t, old)
	assert.Equal(t, uint64(3), it.Sequence)
	assert.Equal(t, uint64(2), it.Missed)

	// An unknown page resumes at the oldest item held, of the current page.
	unknown := subscribe(t, b.cache(t, "chat"), "room", topics.ResumeAt(seen.Page-1, 5))
	it = next(t, unknown)
	assert.Equal(t, uint64(3), it.Sequence)
	assert.Equal(t, uint64(2), it.Missed)
}

// TestItemsKeepWhatWasPublished: publishers' identities, text and bytes,
// and empty values cross processes unchanged; code written against a Cache
// (TopicOf[Value], Handle, topicstest) works on a bridged one.
func TestItemsKeepWhatWasPublished(t *testing.T) {
	c := natstest.NewCluster(t, 1)
	a, b := newProcess(t, c, 0), newProcess(t, c, 0)
	ca, cb := a.cache(t, "k"), b.cache(t, "k")
	rec := topicstest.NewValueRecorder(t, cb, "t")
	s := subscribe(t, cb, "t")

	ctx := t.Context()
	require.NoError(t, ca.PublishAs(ctx, "t", "ada", topics.TextValue("hello")))
	require.NoError(t, ca.Publish(ctx, "t", []byte{0, 1, 2}))
	require.NoError(t, ca.PublishString(ctx, "t", ""))
	typed, err := topics.TopicOf[topics.Value](ca, "t")
	require.NoError(t, err)
	require.NoError(t, typed.Publish(ctx, topics.BytesValue(nil)))

	it := next(t, s)
	assert.Equal(t, "ada", it.Publisher)
	assert.True(t, it.Value.IsText())
	assert.Equal(t, "hello", it.Value.String())
	it = next(t, s)
	assert.Empty(t, it.Publisher)
	assert.False(t, it.Value.IsText())
	assert.Equal(t, []byte{0, 1, 2}, it.Value.Bytes())
	it = next(t, s)
	assert.True(t, it.Value.IsText())
	assert.Zero(t, it.Value.Len())
	it = next(t, s)
	assert.False(t, it.Value.IsText())
	assert.Zero(t, it.Value.Len())

	items := rec.WaitFor(4)
	assert.Equal(t, "hello", items[0].Value.String())
	rec.AssertNoLoss()
	rec.AssertSequential()

	_, err = topics.TopicOf[int](ca, "numbers")
	require.ErrorIs(t, err, topics.ErrTopicType, "a sequenced cache carries Values only")
}

// TestClosedBridge: after Close, publishing and opening topics through the
// bridge fail with topics.ErrClosed.
func TestClosedBridge(t *testing.T) {
	c := natstest.NewCluster(t, 1)
	p := newProcess(t, c, 0)
	cache := p.cache(t, "x")
	subscribe(t, cache, "open")
	require.NoError(t, p.bridge.Close())
	require.NoError(t, p.bridge.Close(), "idempotent")
	require.ErrorIs(t, cache.PublishString(t.Context(), "open", "v"), topics.ErrClosed)
	_, err := cache.Subscribe(t.Context(), "new")
	require.ErrorIs(t, err, topics.ErrClosed)
}

// TestStreamOfSomethingElse: a stream that has the name of a topic's stream
// but is not its stream is left alone, and the topic reports ErrConflict.
func TestStreamOfSomethingElse(t *testing.T) {
	c := natstest.NewCluster(t, 1)
	p := newProcess(t, c, 0)
	js, err := jetstream.New(p.nc)
	require.NoError(t, err)
	name := natsbridge.StreamOf(p.bridge, "x", "t")
	_, err = js.CreateStream(t.Context(), jetstream.StreamConfig{Name: name, Subjects: []string{"elsewhere"}, Storage: jetstream.MemoryStorage})
	require.NoError(t, err)
	err = p.cache(t, "x").PublishString(t.Context(), "t", "v")
	require.ErrorIs(t, err, natsbridge.ErrConflict)
	_, err = p.cache(t, "x").Subscribe(t.Context(), "t")
	require.ErrorIs(t, err, natsbridge.ErrConflict)
	_, err = js.Stream(t.Context(), name)
	require.NoError(t, err, "still there")
}

func TestNewRefusesBadOptions(t *testing.T) {
	c := natstest.NewCluster(t, 1)
	nc := c.Connect(0)
	for _, o := range []natsbridge.Option{
		natsbridge.WithWindow(3), natsbridge.WithWindow(0), natsbridge.WithReplicas(2),
		natsbridge.WithPrefix(""), natsbridge.WithPrefix("a.b"), natsbridge.WithTimeout(0),
		natsbridge.WithIdleTimeout(-time.Second), nil,
	} {
		_, err := natsbridge.New(nc, o)
		require.ErrorIs(t, err, topics.ErrInvalidOption)
	}
	_, err := natsbridge.New(nil)
	require.ErrorIs(t, err, topics.ErrInvalidOption)
}
