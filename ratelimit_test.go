package topics_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

// requireRateLimited checks that err is the PublishRate *LimitError of the
// topic, with the given retry delay.
func requireRateLimited(t *testing.T, err error, topic string, rate float64, burst int, retry time.Duration) {
	t.Helper()
	require.ErrorIs(t, err, topics.ErrLimitExceeded)
	var le *topics.LimitError
	require.True(t, errors.As(err, &le), "errors.As(%v, *LimitError)", err)
	assert.Equal(t, topics.LimitError{
		Cache: "test-cache", Limit: "PublishRate", Max: burst,
		Topic: topic, Rate: rate, RetryAfter: retry,
	}, *le)
}

// TestPublishRate: a burst goes through, the next publish is refused with
// a *LimitError and takes no sequence number, and tokens come back with
// time (fake time: synctest).
func TestPublishRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate, burst = 10, 3 // a token every 100ms
		c := newCache(t, topics.WithPublishRate(rate, burst))
		ctx := t.Context()
		sub := subscribe(t, c, "t")

		for range burst {
			publish(t, c, "t", "ok")
		}
		err := c.PublishString(ctx, "t", "refused")
		requireRateLimited(t, err, "t", rate, burst, 100*time.Millisecond)
		assert.Equal(t, `topics: limit exceeded: topic "t" of cache "test-cache" allows at most PublishRate=10/s with bursts of 3; retry in 100ms`, err.Error())
		requireRateLimited(t, c.Publish(ctx, "t", []byte("refused")), "t", rate, burst, 100*time.Millisecond)

		// Each topic has its own bucket.
		publish(t, c, "other", "ok")

		time.Sleep(40 * time.Millisecond)
		requireRateLimited(t, c.PublishString(ctx, "t", "refused"), "t", rate, burst, 60*time.Millisecond)
		time.Sleep(60 * time.Millisecond)
		publish(t, c, "t", "refilled") // one token back
		requireRateLimited(t, c.PublishString(ctx, "t", "refused"), "t", rate, burst, 100*time.Millisecond)

		// Refused publishes took no sequence numbers.
		for i := range burst + 1 {
			it := next(t, sub)
			assert.Equal(t, uint64(i+1), it.Sequence)
			assert.Zero(t, it.Missed)
		}

		// A long pause refills the bucket to the burst, no further.
		time.Sleep(time.Hour)
		for range burst {
			publish(t, c, "t", "ok")
		}
		requireRateLimited(t, c.PublishString(ctx, "t", "refused"), "t", rate, burst, 100*time.Millisecond)

		// A steady publisher at the rate is never refused.
		time.Sleep(time.Second)
		for range 50 {
			publish(t, c, "t", "steady")
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// TestPublishRateSharedByPublishers: every way to publish to a topic draws
// on the topic's one bucket.
func TestPublishRateSharedByPublishers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, topics.WithPublishRate(1, 4))
		ctx := t.Context()
		h, err := topics.TopicOf[topics.Value](c, "t")
		require.NoError(t, err)

		require.NoError(t, c.PublishString(ctx, "t", "a"))
		require.NoError(t, c.Publish(ctx, "t", []byte("b")))
		require.NoError(t, h.Publish(ctx, topics.TextValue("c")))
		require.NoError(t, c.PublishAs(ctx, "t", "ada", topics.TextValue("d")))
		for _, err := range []error{
			c.PublishString(ctx, "t", "x"),
			c.Publish(ctx, "t", []byte("x")),
			h.Publish(ctx, topics.TextValue("x")),
			c.PublishAs(ctx, "t", "ada", topics.TextValue("x")),
		} {
			requireRateLimited(t, err, "t", 1, 4, time.Second)
		}

		// Typed topics are limited too.
		ints, err := topics.TopicOf[int](c, "ints")
		require.NoError(t, err)
		for i := range 4 {
			require.NoError(t, ints.Publish(ctx, i))
		}
		requireRateLimited(t, ints.Publish(ctx, 4), "ints", 1, 4, time.Second)
	})
}

// TestPublishRateConcurrent: publishers racing for the bucket get exactly
// the burst between them (time stands still in the bubble), and the
// sequence numbers have no gaps.
func TestPublishRateConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const burst, goroutines, tries = 100, 8, 50
		c := newCache(t, topics.WithPublishRate(1, burst))
		sub := subscribe(t, c, "t")
		var ok, refused atomic.Int64
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for range tries {
					err := c.PublishString(context.Background(), "t", "x")
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, topics.ErrLimitExceeded):
						refused.Add(1)
					default:
						t.Errorf("unexpected error %v", err)
					}
				}
			})
		}
		wg.Wait()
		assert.Equal(t, int64(burst), ok.Load())
		assert.Equal(t, int64(goroutines*tries-burst), refused.Load())
		for i := range burst {
			it := next(t, sub)
			require.Equal(t, uint64(i+1), it.Sequence)
		}
	})
}

func TestPublishRateOptions(t *testing.T) {
	bad := []struct {
		desc      string
		perSecond float64
		burst     int
		says      string
	}{
		{"zero rate", 0, 1, "WithPublishRate(0, 1): the rate must be positive"},
		{"negative rate", -1, 1, "the rate must be positive"},
		{"NaN rate", math.NaN(), 1, "the rate must be positive"},
		{"-Inf rate", math.Inf(-1), 1, "the rate must be positive"},
		{"rate too high", 2e9, 1, "at most 1e+09 per second"},
		{"zero burst", 1, 0, "the burst must be at least 1"},
		{"negative burst", 1, -5, "the burst must be at least 1"},
		{"burst too long", 1e-9, 5, "lasts too long"},
		{"burst overflows", 0.1, math.MaxInt32, "lasts too long"},
	}
	for _, b := range bad {
		t.Run(b.desc, func(t *testing.T) {
			_, err := topics.NewCache("c", topics.WithPublishRate(b.perSecond, b.burst))
			require.ErrorIs(t, err, topics.ErrInvalidOption)
			assert.Contains(t, err.Error(), b.says)
			e := topics.New(topics.WithPublishRate(b.perSecond, b.burst))
			defer e.Close()
			_, err = e.CreateCache("c")
			require.ErrorIs(t, err, topics.ErrInvalidOption)
		})
	}

	synctest.Test(t, func(t *testing.T) {
		// The extremes that are allowed.
		for _, r := range []struct {
			perSecond float64
			burst     int
		}{{topics.MaxPublishRate, 1}, {1e-9, 4}, {1, min(1<<32, math.MaxInt)}} {
			c := newCache(t, topics.WithPublishRate(r.perSecond, r.burst))
			publish(t, c, "t", "x")
		}

		// An engine-wide default applies to each cache; +Inf opts a cache
		// out.
		e := topics.New(topics.WithPublishRate(1, 1))
		defer e.Close()
		limited, err := e.CreateCache("limited")
		require.NoError(t, err)
		free, err := e.CreateCache("free", topics.WithPublishRate(math.Inf(1), 1))
		require.NoError(t, err)
		for _, c := range []*topics.Cache{limited, free} {
			require.NoError(t, c.PublishString(t.Context(), "t", "x"))
		}
		require.ErrorIs(t, limited.PublishString(t.Context(), "t", "x"), topics.ErrLimitExceeded)
		for range 1000 {
			require.NoError(t, free.PublishString(t.Context(), "t", "x"))
		}
	})
}

// TestPublishRateOff: with no rate limit, publishing as fast as possible
// is never refused, and the old limits read as before.
func TestPublishRateOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, topics.WithMaxTopics(1))
		for range 10000 {
			publish(t, c, "t", "x")
		}
		err := c.PublishString(t.Context(), "u", "x")
		var le *topics.LimitError
		require.True(t, errors.As(err, &le))
		assert.Equal(t, topics.LimitError{Cache: "test-cache", Limit: "MaxTopics", Max: 1}, *le)
		assert.Equal(t, `topics: limit exceeded: cache "test-cache" allows at most MaxTopics=1`, err.Error())
	})
}

// TestPublishRateRecreatedTopic: a topic dropped for idleness and created
// again starts with a full bucket.
func TestPublishRateRecreatedTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, topics.WithPublishRate(1.0/3600, 2), topics.WithTopicIdleTimeout(time.Minute))
		publish(t, c, "t", "a")
		publish(t, c, "t", "b")
		requireRateLimited(t, c.PublishString(t.Context(), "t", "c"), "t", 1.0/3600, 2, time.Hour)
		time.Sleep(3 * time.Minute) // dropped
		publish(t, c, "t", "a")
		publish(t, c, "t", "b")
	})
}

// TestPublishRateFailedPublishRefunded: a publish admitted by the rate
// limit that then fails (its context ends while it waits for a Lossless
// reader) publishes nothing and gives its token back.
func TestPublishRateFailedPublishRefunded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate = 1.0 / 3600 // no refill to speak of during the test
		c := newCache(t, topics.WithRingSize(1), topics.WithPublishRate(rate, 2))
		sub := subscribe(t, c, "t", topics.Lossless())
		publish(t, c, "t", "one") // the ring is full; one token left

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err := c.PublishString(ctx, "t", "two") // waits for the lossless reader
		require.ErrorIs(t, err, context.DeadlineExceeded)

		assert.Equal(t, "one", next(t, sub).Value.String())
		publish(t, c, "t", "three") // the refunded token
		requireRateLimited(t, c.PublishString(t.Context(), "t", "four"), "t", rate, 2, time.Hour-time.Second)
		it := next(t, sub)
		assert.Equal(t, "three", it.Value.String())
		assert.Equal(t, uint64(2), it.Sequence, "the failed publish took no sequence number")
	})
}
