package topics_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

func TestPublishWithoutSubscribers(t *testing.T) {
	ctx := context.Background()
	c := newCache(t)
	require.NoError(t, c.Publish(ctx, "nobody", []byte("x")))
	require.NoError(t, c.PublishString(ctx, "nobody", "y"))
	require.NoError(t, c.Publish(ctx, "nobody", nil))
	require.NoError(t, c.PublishString(ctx, "nobody-else", ""))
}

func TestPublishCreatesTopic(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, topics.WithMaxTopics(1))
	require.NoError(t, c.PublishString(ctx, "first", "kept"))

	// The publish created the topic: it took the only topic slot...
	err := c.PublishString(ctx, "second", "x")
	require.ErrorIs(t, err, topics.ErrLimitExceeded)
	_, err = c.Subscribe(ctx, "second")
	require.ErrorIs(t, err, topics.ErrLimitExceeded)

	// ...and holds the item for a subscriber that resumes from the start,
	// whatever the page.
	s := subscribe(t, c, "first", topics.ResumeAt(0, 1))
	it := next(t, s)
	assert.Equal(t, "kept", it.Value.String())
	assert.Equal(t, uint64(1), it.Sequence)
	assert.Equal(t, uint64(0), it.Missed)
}

func TestSubscribeCreatesTopic(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, topics.WithMaxTopics(1))
	s := subscribe(t, c, "first")

	err := c.PublishString(ctx, "second", "x")
	require.ErrorIs(t, err, topics.ErrLimitExceeded, "the subscribe created the only topic")

	publish(t, c, "first", "hello")
	it := next(t, s)
	assert.Equal(t, "hello", it.Value.String())
	assert.Equal(t, uint64(1), it.Sequence, "the first item of a topic created by a subscribe")
}

func TestNewSubscriptionSeesNoHistory(t *testing.T) {
	c := newCache(t)
	for i := 1; i <= 3; i++ {
		publish(t, c, "t", "old"+strconv.Itoa(i))
	}
	s := subscribe(t, c, "t")

	// Nothing is waiting for the new subscription.
	ctx, cancel := context.WithCancel(context.Background())
	ch := nextAsync(ctx, s)
	waitParked(t, 1)
	requirePending(t, ch)
	cancel()
	r := await(t, ch)
	require.ErrorIs(t, r.Err, context.Canceled)

	publish(t, c, "t", "new")
	it := next(t, s)
	assert.Equal(t, "new", it.Value.String())
	assert.Equal(t, uint64(4), it.Sequence)
	assert.Equal(t, uint64(0), it.Missed)
}

func TestSubscribersSeeSameItemsInOrder(t *testing.T) {
	const n = 20
	c := newCache(t)
	subs := []*topics.Subscription[topics.Value]{
		subscribe(t, c, "orders"),
		subscribe(t, c, "orders"),
		subscribe(t, c, "orders"),
	}
	for i := 1; i <= n; i++ {
		publish(t, c, "orders", "item-"+strconv.Itoa(i))
	}
	var page uint64
	for k, s := range subs {
		for i := 1; i <= n; i++ {
			it := next(t, s)
			assert.Equal(t, uint64(i), it.Sequence, "subscriber %d", k)
			assert.Equal(t, uint64(0), it.Missed, "subscriber %d", k)
			assert.Equal(t, "item-"+strconv.Itoa(i), it.Value.String(), "subscriber %d", k)
			assert.Equal(t, "orders", it.Topic)
			assert.Equal(t, "", it.Publisher)
			if page == 0 {
				page = it.Page
			}
			assert.Equal(t, page, it.Page, "one topic instance, one page")
		}
	}
}

func TestSequencesArePerTopic(t *testing.T) {
	c := newCache(t)
	a := subscribe(t, c, "a")
	b := subscribe(t, c, "b")
	publish(t, c, "a", "a1")
	publish(t, c, "a", "a2")
	publish(t, c, "b", "b1")
	publish(t, c, "a", "a3")
	publish(t, c, "b", "b2")
	for i, want := range []string{"a1", "a2", "a3"} {
		it := next(t, a)
		assert.Equal(t, uint64(i+1), it.Sequence)
		assert.Equal(t, want, it.Value.String())
		assert.Equal(t, "a", it.Topic)
	}
	for i, want := range []string{"b1", "b2"} {
		it := next(t, b)
		assert.Equal(t, uint64(i+1), it.Sequence)
		assert.Equal(t, want, it.Value.String())
		assert.Equal(t, "b", it.Topic)
	}
}

func TestConcurrentPublishersOneOrder(t *testing.T) {
	const (
		publishers = 4
		each       = 200
		readers    = 3
		total      = publishers * each // below the default ring size: no loss
	)
	c := newCache(t)
	subs := make([]*topics.Subscription[topics.Value], readers)
	for i := range subs {
		subs[i] = subscribe(t, c, "t")
	}

	got := make([][]string, readers)
	errs := make([]error, readers)
	var wg sync.WaitGroup
	for r := range readers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 4*waitLimit)
			defer cancel()
			var want uint64 = 1
			for len(got[r]) < total {
				it, err := subs[r].Next(ctx)
				if err != nil {
					errs[r] = err
					return
				}
				if it.Sequence != want || it.Missed != 0 {
					errs[r] = fmt.Errorf("reader %d: got sequence %d missed %d, want %d missed 0", r, it.Sequence, it.Missed, want)
					return
				}
				want++
				got[r] = append(got[r], it.Value.String())
			}
		})
	}
	publishConcurrently(t, c, "t", publishers, each)
	wg.Wait()
	for r := range readers {
		require.NoError(t, errs[r])
		require.Len(t, got[r], total)
		assert.Equal(t, got[0], got[r], "reader %d saw another order", r)
	}
	// Each publisher's items keep its order.
	last := map[int]int{}
	for _, v := range got[0] {
		var p, i int
		_, err := fmt.Sscanf(v, "%d:%d", &p, &i)
		require.NoError(t, err)
		prev, seen := last[p]
		if seen {
			assert.Equal(t, prev+1, i, "publisher %d out of order", p)
		} else {
			assert.Equal(t, 0, i, "publisher %d started at %d", p, i)
		}
		last[p] = i
	}
	assert.Len(t, last, publishers)
}

func TestPublishNeverWaitsForSubscribers(t *testing.T) {
	const (
		stalled = 1000
		n       = 10000
		size    = 8
	)
	c := newCache(t, topics.WithRingSize(size))
	subs := make([]*topics.Subscription[topics.Value], stalled)
	for i := range subs {
		subs[i] = subscribe(t, c, "t")
	}
	runWithin(t, waitLimit, func() error {
		for i := range n {
			if err := c.PublishString(context.Background(), "t", strconv.Itoa(i+1)); err != nil {
				return err
			}
		}
		return nil
	}, func() string { return "publishing to stalled subscribers did not finish" })
	for i, s := range subs {
		it := next(t, s)
		require.Equal(t, uint64(n-size+1), it.Sequence, "subscriber %d", i)
		require.Equal(t, uint64(n-size), it.Missed, "subscriber %d", i)
		require.Equal(t, strconv.Itoa(n-size+1), it.Value.String())
	}
}
