package topics_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

// NextBatch, All and handlers read the ring a run of entries at a time.
// These tests hold them to what reading one item at a time guarantees.

// A batch read in one run fills in every field, the publisher included.
func TestNextBatchRunFields(t *testing.T) {
	ctx := context.Background()
	c := newCache(t)
	s := subscribe(t, c, "t")
	for i := range 6 {
		require.NoError(t, c.PublishAs(ctx, "t", "p"+strconv.Itoa(i%2), topics.TextValue(strconv.Itoa(i))))
	}
	items := nextBatch(t, s, 8)
	require.Len(t, items, 6)
	page := s.Stats().Page
	for i, it := range items {
		assert.Equal(t, topics.Item[topics.Value]{
			Topic: "t", Sequence: uint64(i + 1), Page: page, Publisher: "p" + strconv.Itoa(i%2),
			Value: topics.TextValue(strconv.Itoa(i)),
		}, it)
	}
}

// All moves the subscription past each item as it hands it out: one left
// mid-run is unread, not delivered and not lost.
func TestAllBreakMidRunLeavesTheRestUnread(t *testing.T) {
	ctx := context.Background()
	c := newCache(t)
	s := subscribe(t, c, "t")
	for i := 1; i <= 10; i++ {
		publish(t, c, "t", strconv.Itoa(i))
	}
	var got []string
	for it, err := range s.All(ctx) {
		require.NoError(t, err)
		got = append(got, it.Value.String())
		if len(got) == 3 {
			break
		}
	}
	assert.Equal(t, []string{"1", "2", "3"}, got)
	st := s.Stats()
	assert.Equal(t, uint64(3), st.Delivered)
	assert.Equal(t, uint64(0), st.Missed)
	assert.Equal(t, uint64(7), st.Unread)
}

// An end that comes while All is handing out a run stops it at once: the
// rest of the run is not handed out.
func TestAllSeesEndMidRun(t *testing.T) {
	for _, end := range []string{"close", "ctx", "subscribe-ctx"} {
		t.Run(end, func(t *testing.T) {
			c := newCache(t)
			sctx, scancel := context.WithCancel(context.Background())
			defer scancel()
			var s *topics.Subscription[topics.Value]
			if end == "subscribe-ctx" {
				var err error
				s, err = c.Subscribe(sctx, "t")
				require.NoError(t, err)
			} else {
				s = subscribe(t, c, "t")
			}
			for i := 1; i <= 10; i++ {
				publish(t, c, "t", strconv.Itoa(i))
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			n := 0
			var last error
			for _, err := range s.All(ctx) {
				if err != nil {
					last = err
					continue
				}
				n++
				switch end {
				case "close":
					require.NoError(t, s.Close())
				case "ctx":
					cancel()
				case "subscribe-ctx":
					scancel()
				}
			}
			assert.Equal(t, 1, n, "items handed out after the end")
			if end == "ctx" {
				assert.ErrorIs(t, last, context.Canceled)
			} else {
				assert.ErrorIs(t, last, topics.ErrClosed)
			}
		})
	}
}

// A handler stopped from its function while a run is ready gets no other
// item, and the statistics count the rest as unread.
func TestHandlerStopMidRun(t *testing.T) {
	c := newCache(t)
	ready := make(chan struct{})
	var h *topics.Handler
	var calls int
	h, err := c.Handle(context.Background(), "t", func(context.Context, topics.Item[topics.Value]) error {
		<-ready
		calls++
		return h.Stop()
	})
	require.NoError(t, err)
	for i := 1; i <= 10; i++ {
		publish(t, c, "t", strconv.Itoa(i))
	}
	close(ready)
	<-h.Done()
	assert.Equal(t, 1, calls)
	assert.True(t, errors.Is(h.Err(), topics.ErrClosed))
	st := h.Stats()
	assert.Equal(t, uint64(1), st.Delivered)
	assert.Equal(t, uint64(9), st.Unread)
}

// A handler allocates nothing per item: a run of items costs no allocation
// beyond the publishes' own (none, for a typed topic of ints).
func TestHandlerAllocatesNothingPerItem(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	const perRun = 64
	c := newCache(t)
	tp, err := topics.TopicOf[int](c, "t")
	require.NoError(t, err)
	got := make(chan struct{}, perRun)
	h, err := tp.Handle(context.Background(), func(context.Context, topics.Item[int]) error {
		got <- struct{}{}
		return nil
	})
	require.NoError(t, err)
	defer h.Stop()
	ctx := context.Background()
	allocs := testing.AllocsPerRun(20, func() {
		for i := range perRun {
			if err := tp.Publish(ctx, i); err != nil {
				panic(err)
			}
		}
		for range perRun {
			<-got
		}
	})
	assert.Less(t, allocs, float64(perRun)/4, "allocations per run of %d items", perRun)
}
