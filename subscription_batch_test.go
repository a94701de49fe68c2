package topics_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

// nextBatch calls s.NextBatch with a buffer of size items and a context
// that gives up after waitLimit, and returns what it read.
func nextBatch[T any](t testing.TB, s *topics.Subscription[T], size int) []topics.Item[T] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	items := make([]topics.Item[T], size)
	n, err := s.NextBatch(ctx, items)
	require.NoError(t, err)
	require.Positive(t, n, "NextBatch returned no item and no error")
	require.LessOrEqual(t, n, size)
	return items[:n]
}

// values returns the payloads of items as strings.
func values(items []topics.Item[topics.Value]) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Value.String())
	}
	return out
}

func TestNextBatchReadsWhatIsReady(t *testing.T) {
	c := newCache(t)
	s := subscribe(t, c, "t")
	for i := 1; i <= 5; i++ {
		publish(t, c, "t", strconv.Itoa(i))
	}

	first := nextBatch(t, s, 3)
	assert.Equal(t, []string{"1", "2", "3"}, values(first), "a full buffer")
	rest := nextBatch(t, s, 8)
	assert.Equal(t, []string{"4", "5"}, values(rest), "only what is ready, not a full buffer")

	// Every field is what Next would have filled in.
	one := next(t, mustResume(t, c, "t", 1))
	assert.Equal(t, one, first[0])
	for i, it := range append(first, rest...) {
		assert.Equal(t, "t", it.Topic)
		assert.Equal(t, uint64(i+1), it.Sequence)
		assert.Equal(t, one.Page, it.Page)
		assert.Equal(t, uint64(0), it.Missed)
		assert.True(t, it.Value.IsText())
	}
	assert.Equal(t, uint64(5), s.Stats().Delivered)
}

// mustResume subscribes to topic from sequence seq of its current page.
func mustResume(t testing.TB, c *topics.Cache, topic string, seq uint64) *topics.Subscription[topics.Value] {
	t.Helper()
	probe := subscribe(t, c, topic)
	page := probe.Stats().Page
	return subscribe(t, c, topic, topics.ResumeAt(page, seq))
}

func TestNextBatchWaitsForTheFirstItem(t *testing.T) {
	c := newCache(t)
	s := subscribe(t, c, "t")
	type batch struct {
		items []topics.Item[topics.Value]
		err   error
	}
	got := make(chan batch, 1)
	go func() {
		items := make([]topics.Item[topics.Value], 4)
		n, err := s.NextBatch(context.Background(), items)
		got <- batch{items[:n], err}
	}()
	waitParked(t, 1)
	select {
	case b := <-got:
		t.Fatalf("NextBatch returned %d items (err %v) with nothing published", len(b.items), b.err)
	default:
	}
	publish(t, c, "t", "late")
	select {
	case b := <-got:
		require.NoError(t, b.err)
		assert.Equal(t, []string{"late"}, values(b.items))
	case <-time.After(waitLimit):
		t.Fatal("NextBatch did not return after a publish")
	}
}

func TestNextBatchReportsLoss(t *testing.T) {
	c := newCache(t, topics.WithRingSize(4))
	s := subscribe(t, c, "t")
	for i := 1; i <= 10; i++ {
		publish(t, c, "t", strconv.Itoa(i))
	}
	items := nextBatch(t, s, 8)
	require.Len(t, items, 4, "the ring holds the newest 4")
	assert.Equal(t, []string{"7", "8", "9", "10"}, values(items))
	assert.Equal(t, uint64(6), items[0].Missed, "1 to 6 were overwritten")
	for _, it := range items[1:] {
		assert.Equal(t, uint64(0), it.Missed)
	}
	st := s.Stats()
	assert.Equal(t, uint64(4), st.Delivered)
	assert.Equal(t, uint64(6), st.Missed)
	assert.Equal(t, uint64(0), st.Lag)
}

// The statistics are published whenever a batch crosses a multiple of 32
// deliveries or catches up, so after each of these batches they are exact.
func TestNextBatchStatistics(t *testing.T) {
	c := newCache(t)
	s := subscribe(t, c, "t")
	for i := range 100 {
		publish(t, c, "t", strconv.Itoa(i))
	}
	for _, want := range []uint64{40, 80, 100} {
		nextBatch(t, s, 40)
		assert.Equal(t, want, s.Stats().Delivered)
	}
}

func TestNextBatchErrors(t *testing.T) {
	c := newCache(t)
	s := subscribe(t, c, "t")
	publish(t, c, "t", "ready")

	n, err := s.NextBatch(context.Background(), nil)
	assert.NoError(t, err, "an empty buffer")
	assert.Zero(t, n)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err = s.NextBatch(ctx, make([]topics.Item[topics.Value], 2))
	assert.ErrorIs(t, err, context.Canceled, "a done context, even with an item ready")
	assert.Zero(t, n)
	assert.Equal(t, []string{"ready"}, values(nextBatch(t, s, 2)), "the subscription stayed open")

	require.NoError(t, s.Close())
	n, err = s.NextBatch(context.Background(), make([]topics.Item[topics.Value], 2))
	assert.ErrorIs(t, err, topics.ErrClosed)
	assert.Zero(t, n)
}

// A lossless reader lets waiting publishers past everything a batch read,
// not only its first item: with a ring of 2 holding 1 and 2, the publisher
// of 3 waits for 1 to be read, and that of 4 for 2.
func TestNextBatchReleasesLosslessPublishers(t *testing.T) {
	c := newCache(t, topics.WithRingSize(2))
	s := subscribe(t, c, "t", topics.Lossless())
	publish(t, c, "t", "1")
	publish(t, c, "t", "2")
	third := publishAsync(context.Background(), c, "t", "x")
	fourth := publishAsync(context.Background(), c, "t", "x")
	waitPublishersBlocked(t, 2)
	// Reading 1 releases the third publish at once, so the batch may also
	// find its item: it holds 1, 2 and perhaps that one.
	got := values(nextBatch(t, s, 4))
	require.GreaterOrEqual(t, len(got), 2)
	assert.Equal(t, []string{"1", "2"}, got[:2])
	require.NoError(t, awaitErr(t, third))
	require.NoError(t, awaitErr(t, fourth))
	for len(got) < 4 {
		got = append(got, values(nextBatch(t, s, 4))...)
	}
	assert.Equal(t, []string{"1", "2", "x", "x"}, got)
}

func TestNextBatchTyped(t *testing.T) {
	c := newCache(t)
	h, err := topics.TopicOf[int](c, "n")
	require.NoError(t, err)
	s, err := h.Subscribe(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	for i := range 3 {
		require.NoError(t, h.Publish(context.Background(), i*i))
	}
	items := nextBatch(t, s, 3)
	var got []int
	for _, it := range items {
		got = append(got, it.Value)
	}
	assert.Equal(t, []int{0, 1, 4}, got)
}
