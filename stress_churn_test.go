package topics_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

// TestChurn runs subscribers that come and go on a few topics while the idle
// sweeper (with a tiny real timeout) drops and re-creates them. Every
// subscriber must receive what it publishes after subscribing, no limit may
// be hit spuriously, and when everything is closed every slot is free again.
func TestChurn(t *testing.T) {
	const (
		workers   = 8
		rounds    = 150
		maxTopics = 3
	)
	names := []string{"t0", "t1", "t2"}
	c := newCache(t,
		topics.WithTopicIdleTimeout(time.Millisecond),
		topics.WithMaxTopics(maxTopics),
		topics.WithMaxSubscribers(workers),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 6*waitLimit)
	defer cancel()

	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			errs <- churnWorker(ctx, c, w, rounds, names)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	// Every subscriber slot is free again...
	var subs []*topics.Subscription[topics.Value]
	for i := range workers {
		s, err := c.Subscribe(context.Background(), names[i%len(names)])
		require.NoError(t, err, "slot %d", i)
		subs = append(subs, s)
	}
	_, err := c.Subscribe(context.Background(), names[0])
	requireLimit(t, err, "test-cache", "MaxSubscribers", workers)
	for _, s := range subs {
		require.NoError(t, s.Close())
	}
	// ...and no topic slot leaked: the three names still fit.
	for _, n := range names {
		require.NoError(t, c.PublishString(context.Background(), n, "x"))
	}
}

func churnWorker(ctx context.Context, c *topics.Cache, w, rounds int, names []string) error {
	for r := range rounds {
		name := names[(w+r)%len(names)]
		var (
			s   *topics.Subscription[topics.Value]
			err error
		)
		if r%2 == 0 {
			s, err = c.Subscribe(ctx, name)
		} else {
			var h *topics.Topic[topics.Value]
			h, err = topics.TopicOf[topics.Value](c, name)
			if err == nil {
				s, err = h.Subscribe(ctx)
			}
		}
		if err != nil {
			return fmt.Errorf("worker %d round %d: subscribe %s: %w", w, r, name, err)
		}
		token := fmt.Sprintf("w%d-r%d", w, r)
		if r%3 == 0 {
			var h *topics.Topic[topics.Value]
			h, err = topics.TopicOf[topics.Value](c, name)
			if err == nil {
				err = h.Publish(ctx, topics.TextValue(token))
			}
		} else {
			err = c.PublishString(ctx, name, token)
		}
		if err != nil {
			s.Close()
			return fmt.Errorf("worker %d round %d: publish %s: %w", w, r, name, err)
		}
		var prev uint64
		for {
			it, err := s.Next(ctx)
			if err != nil {
				s.Close()
				return fmt.Errorf("worker %d round %d: waiting for %s on %s: %w", w, r, token, name, err)
			}
			if prev != 0 && it.Sequence != prev+1+it.Missed {
				s.Close()
				return fmt.Errorf("worker %d: sequence %d (missed %d) after %d", w, it.Sequence, it.Missed, prev)
			}
			prev = it.Sequence
			if it.Value.String() == token {
				break
			}
		}
		s.Close()
	}
	return nil
}

// TestEngineConcurrentCaches creates, lists and deletes caches from many
// goroutines; every listing must be sorted and hold no duplicates.
func TestEngineConcurrentCaches(t *testing.T) {
	const (
		workers = 6
		rounds  = 100
	)
	e := topics.New(topics.WithRingSize(2))
	defer e.Close()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				name := fmt.Sprintf("w%d-%d", w, r%5)
				c, err := e.CreateCache(name)
				if err != nil {
					errs <- err
					return
				}
				if err := c.PublishString(context.Background(), "t", "x"); err != nil {
					errs <- err
					return
				}
				l := e.ListCaches()
				if !slices.IsSorted(l) || len(slices.Compact(slices.Clone(l))) != len(l) || !slices.Contains(l, name) {
					errs <- fmt.Errorf("bad listing %v", l)
					return
				}
				if err := e.DeleteCache(name); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Empty(t, e.ListCaches())
}
