package topics_test

import (
	"context"
	"errors"
	"math"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

type badOption struct {
	desc  string
	opt   topics.Option
	value string // how the bad value must appear in the message
}

func badOptions() []badOption {
	i := strconv.Itoa
	return []badOption{
		{"RingSize 3", topics.WithRingSize(3), "3"},
		{"RingSize 6", topics.WithRingSize(6), "6"},
		{"RingSize 1000", topics.WithRingSize(1000), "1000"},
		{"RingSize 1025", topics.WithRingSize(1025), "1025"},
		{"RingSize 0", topics.WithRingSize(0), "0"},
		{"RingSize -1", topics.WithRingSize(-1), "-1"},
		{"RingSize -4", topics.WithRingSize(-4), "-4"},
		{"RingSize 1<<25", topics.WithRingSize(1 << 25), i(1 << 25)},
		{"RingSize 1<<30", topics.WithRingSize(1 << 30), i(1 << 30)},
		{"RingSize MaxInt", topics.WithRingSize(math.MaxInt), i(math.MaxInt)},
		{"RingSize MinInt", topics.WithRingSize(math.MinInt), i(math.MinInt)},
		{"MaxSubscribers 0", topics.WithMaxSubscribers(0), "0"},
		{"MaxSubscribers -1", topics.WithMaxSubscribers(-1), "-1"},
		{"MaxSubscribers MinInt", topics.WithMaxSubscribers(math.MinInt), i(math.MinInt)},
		{"MaxTopics 0", topics.WithMaxTopics(0), "0"},
		{"MaxTopics -3", topics.WithMaxTopics(-3), "-3"},
		{"MaxValueSize 0", topics.WithMaxValueSize(0), "0"},
		{"MaxValueSize -7", topics.WithMaxValueSize(-7), "-7"},
		{"TopicIdleTimeout 0", topics.WithTopicIdleTimeout(0), (0 * time.Second).String()},
		{"TopicIdleTimeout -1s", topics.WithTopicIdleTimeout(-time.Second), (-time.Second).String()},
		{"TopicIdleTimeout -1ns", topics.WithTopicIdleTimeout(-1), time.Duration(-1).String()},
	}
}

// requireInvalidOption checks that err reports an invalid option naming value.
func requireInvalidOption(t *testing.T, err error, value string) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, topics.ErrInvalidOption)
	// The value must appear as a whole number, not as part of another one.
	re := regexp.MustCompile(`(^|[^0-9])` + regexp.QuoteMeta(value) + `([^0-9]|$)`)
	assert.Regexp(t, re, err.Error(), "the message must contain the bad value %s", value)
}

func TestOptionsInvalid(t *testing.T) {
	valid := []topics.Option{topics.WithRingSize(16), topics.WithMaxTopics(10)}
	ways := []struct {
		desc   string
		create func(opt topics.Option) (*topics.Cache, *topics.Engine, error)
	}{
		{"NewCache", func(opt topics.Option) (*topics.Cache, *topics.Engine, error) {
			c, err := topics.NewCache("c", opt)
			return c, nil, err
		}},
		{"NewCache after valid options", func(opt topics.Option) (*topics.Cache, *topics.Engine, error) {
			c, err := topics.NewCache("c", append(append([]topics.Option{}, valid...), opt)...)
			return c, nil, err
		}},
		{"engine default", func(opt topics.Option) (*topics.Cache, *topics.Engine, error) {
			e := topics.New(opt)
			c, err := e.CreateCache("c")
			return c, e, err
		}},
		{"engine default among valid ones", func(opt topics.Option) (*topics.Cache, *topics.Engine, error) {
			e := topics.New(append(append([]topics.Option{}, valid...), opt)...)
			c, err := e.CreateCache("c", topics.WithMaxSubscribers(5))
			return c, e, err
		}},
		{"CreateCache override", func(opt topics.Option) (*topics.Cache, *topics.Engine, error) {
			e := topics.New(valid...)
			c, err := e.CreateCache("c", opt)
			return c, e, err
		}},
		{"CreateCache override after valid", func(opt topics.Option) (*topics.Cache, *topics.Engine, error) {
			e := topics.New()
			c, err := e.CreateCache("c", topics.WithMaxValueSize(10), opt)
			return c, e, err
		}},
	}
	for _, way := range ways {
		for _, bad := range badOptions() {
			t.Run(way.desc+"/"+bad.desc, func(t *testing.T) {
				var (
					c   *topics.Cache
					e   *topics.Engine
					err error
				)
				require.NotPanics(t, func() { c, e, err = way.create(bad.opt) })
				if c != nil {
					c.Close()
				}
				requireInvalidOption(t, err, bad.value)
				assert.Nil(t, c)
				if e != nil {
					assert.Empty(t, e.ListCaches(), "a refused CreateCache must create nothing")
					_, err := e.Cache("c")
					require.ErrorIs(t, err, topics.ErrCacheNotFound)
					require.NoError(t, e.Close())
				}
			})
		}
	}
}

func TestOptionsNil(t *testing.T) {
	var c *topics.Cache
	var err error
	require.NotPanics(t, func() { c, err = topics.NewCache("c", nil) })
	require.ErrorIs(t, err, topics.ErrInvalidOption)
	assert.Nil(t, c)

	e := topics.New(nil)
	defer e.Close()
	require.NotPanics(t, func() { c, err = e.CreateCache("c") })
	require.ErrorIs(t, err, topics.ErrInvalidOption)
	assert.Nil(t, c)

	c = newCache(t, topics.WithMaxSubscribers(1))
	var s *topics.Subscription[topics.Value]
	require.NotPanics(t, func() { s, err = c.Subscribe(context.Background(), "t", nil) })
	require.ErrorIs(t, err, topics.ErrInvalidOption)
	assert.Nil(t, s)
	subscribe(t, c, "t") // the refused Subscribe took no slot
}

func TestOptionsValidRingSizes(t *testing.T) {
	for _, n := range []int{1, 2, 4, 1024, 1 << 24} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			c, err := topics.NewCache("c", topics.WithRingSize(n))
			require.NoError(t, err)
			require.NoError(t, c.Close())
		})
	}
}

func TestOptionsValidLimits(t *testing.T) {
	opts := []topics.Option{
		topics.WithMaxSubscribers(1),
		topics.WithMaxTopics(1),
		topics.WithMaxValueSize(1),
		topics.WithTopicIdleTimeout(time.Nanosecond),
		topics.WithMaxSubscribers(math.MaxInt32),
		topics.WithMaxTopics(math.MaxInt32),
		topics.WithMaxValueSize(math.MaxInt32),
		topics.WithTopicIdleTimeout(1000 * time.Hour),
	}
	for i, o := range opts {
		c, err := topics.NewCache("c", o)
		require.NoError(t, err, "option %d", i)
		require.NoError(t, c.Close())
	}
}

// missedAfter publishes n items with one subscriber that does not read, and
// returns the Missed of the first item it then reads.
func missedAfter(t *testing.T, c *topics.Cache, n int) uint64 {
	t.Helper()
	s := subscribe(t, c, "loss")
	for i := range n {
		publish(t, c, "loss", strconv.Itoa(i))
	}
	it := next(t, s)
	require.NoError(t, s.Close())
	return it.Missed
}

func TestOptionsEngineDefaultsApply(t *testing.T) {
	e := topics.New(topics.WithRingSize(4), topics.WithMaxSubscribers(1))
	defer e.Close()
	for _, name := range []string{"one", "two"} {
		c, err := e.CreateCache(name)
		require.NoError(t, err)
		assert.Equal(t, uint64(20-4), missedAfter(t, c, 20), "cache %s: ring size from the engine", name)

		s1, err := c.Subscribe(context.Background(), "a")
		require.NoError(t, err)
		_, err = c.Subscribe(context.Background(), "b")
		require.ErrorIs(t, err, topics.ErrLimitExceeded, "cache %s: MaxSubscribers from the engine", name)
		var le *topics.LimitError
		require.True(t, errors.As(err, &le))
		assert.Equal(t, 1, le.Max)
		require.NoError(t, s1.Close())
	}
}

func TestOptionsCreateCacheOverridesEngine(t *testing.T) {
	e := topics.New(topics.WithRingSize(4), topics.WithMaxSubscribers(1))
	defer e.Close()
	c, err := e.CreateCache("c", topics.WithRingSize(8), topics.WithMaxSubscribers(2))
	require.NoError(t, err)
	assert.Equal(t, uint64(20-8), missedAfter(t, c, 20), "ring size from CreateCache")

	subscribe(t, c, "a")
	subscribe(t, c, "b")
	_, err = c.Subscribe(context.Background(), "c")
	var le *topics.LimitError
	require.True(t, errors.As(err, &le), "got %v", err)
	assert.Equal(t, 2, le.Max)

	// The engine's defaults are untouched for the next cache.
	d, err := e.CreateCache("d")
	require.NoError(t, err)
	assert.Equal(t, uint64(20-4), missedAfter(t, d, 20))
}

func TestOptionsNewCache(t *testing.T) {
	c := newCache(t, topics.WithRingSize(2))
	assert.Equal(t, uint64(10-2), missedAfter(t, c, 10))
}
