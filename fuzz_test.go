package topics_test

import (
	"context"
	"math"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/internal/model"
)

// Fuzz targets for everything that takes input from users, names and option
// values, and the model-based fuzzer of the engine itself (internal/model).
// `go test` runs the seeds (below and in testdata/fuzz/<name>);
// `go test -fuzz <name>` explores further.

// The naming rules of the package doc, restated independently of names.go.
var (
	cacheNameRule = regexp.MustCompile(`^[A-Za-z0-9._-]{1,255}$`)
	topicNameRule = regexp.MustCompile(`^[A-Za-z0-9._/:-]{1,255}$`)
)

func addNameSeeds(f *testing.F) {
	for _, set := range [][]nameCase{validNames, invalidNames, topicOnlyNames} {
		for _, nc := range set {
			f.Add(nc.name)
		}
	}
}

// nameCheck returns a check of the error of a call given name: none when
// the name is valid, else one that requireInvalidName accepts.
func nameCheck(t *testing.T, name string, valid bool) func(error) {
	return func(err error) {
		t.Helper()
		if valid {
			require.NoError(t, err)
		} else {
			requireInvalidName(t, err, name)
		}
	}
}

// Every name is accepted exactly when the rules allow it, everywhere a cache
// name is taken; a refused name is reported with ErrInvalidName and named in
// the message; nothing panics.
func FuzzCacheName(f *testing.F) {
	addNameSeeds(f)
	f.Fuzz(func(t *testing.T, name string) {
		valid := cacheNameRule.MatchString(name)
		check := nameCheck(t, name, valid)

		c, err := topics.NewCache(name)
		check(err)
		if valid {
			require.Equal(t, name, c.Name())
			require.NoError(t, c.Close())
		}

		e := topics.New()
		defer e.Close()
		c, err = e.CreateCache(name)
		check(err)
		got, err := e.Cache(name)
		check(err)
		if valid {
			require.Same(t, c, got)
			require.Equal(t, []string{name}, e.ListCaches())
		}
		check(e.DeleteCache(name))
		require.Empty(t, e.ListCaches())
	})
}

// Every topic name is accepted exactly when the rules allow it, by every
// call that takes one.
func FuzzTopicName(f *testing.F) {
	addNameSeeds(f)
	f.Fuzz(func(t *testing.T, name string) {
		valid := topicNameRule.MatchString(name)
		check := nameCheck(t, name, valid)
		ctx := context.Background()
		c, err := topics.NewCache("fuzz")
		require.NoError(t, err)
		defer c.Close()

		s, err := c.Subscribe(ctx, name)
		check(err)
		check(c.PublishString(ctx, name, "x"))
		check(c.Publish(ctx, name, []byte("y")))
		if valid {
			it, err := s.Next(ctx)
			require.NoError(t, err)
			require.Equal(t, name, it.Topic)
			require.NoError(t, s.Close())
		}
		h, err := topics.TopicOf[int](c, name+"-typed")
		typedValid := topicNameRule.MatchString(name + "-typed")
		if typedValid {
			require.NoError(t, err)
			require.NoError(t, h.Publish(ctx, 1))
		} else {
			requireInvalidName(t, err, name+"-typed")
		}
		_, err = topics.TopicOf[topics.Value](c, name)
		check(err)
	})
}

// Option values: a value the option's documentation allows is accepted and
// takes effect; any other is refused with ErrInvalidOption naming the value;
// nothing panics, alone or combined, given to a cache or to an engine.
func FuzzOptions(f *testing.F) {
	f.Add(1024, 1<<20, 1<<16, 1<<20, int64(5*time.Minute), uint64(0), uint64(0))
	f.Add(1, 1, 1, 1, int64(1), uint64(1), uint64(1))
	f.Add(3, 0, -1, 0, int64(0), uint64(0), uint64(5))
	f.Add(1<<24, math.MaxInt, math.MaxInt, math.MaxInt, int64(math.MaxInt64), uint64(math.MaxUint64), uint64(math.MaxUint64))
	f.Add(1<<25, math.MinInt, math.MinInt, math.MinInt, int64(math.MinInt64), uint64(7), uint64(2))
	f.Add(8, 2, 2, 4, int64(-1), uint64(3), uint64(3))
	f.Fuzz(func(t *testing.T, ring, maxSubs, maxTopics, maxValue int, idle int64, page, seq uint64) {
		d := time.Duration(idle)
		opts := []struct {
			opt   topics.Option
			valid bool
			value string
		}{
			{topics.WithRingSize(ring), ring >= 1 && ring <= 1<<24 && ring&(ring-1) == 0, strconv.Itoa(ring)},
			{topics.WithMaxSubscribers(maxSubs), maxSubs >= 1, strconv.Itoa(maxSubs)},
			{topics.WithMaxTopics(maxTopics), maxTopics >= 1, strconv.Itoa(maxTopics)},
			{topics.WithMaxValueSize(maxValue), maxValue >= 1, strconv.Itoa(maxValue)},
			{topics.WithTopicIdleTimeout(d), d > 0, d.String()},
		}
		all := make([]topics.Option, 0, len(opts))
		allValid := true
		for _, o := range opts {
			all = append(all, o.opt)
			allValid = allValid && o.valid

			c, err := topics.NewCache("c", o.opt)
			if o.valid {
				require.NoError(t, err)
				require.NoError(t, c.Close())
			} else {
				requireInvalidOption(t, err, o.value)
			}
			e := topics.New(o.opt)
			_, err = e.CreateCache("c")
			if o.valid {
				require.NoError(t, err)
			} else {
				requireInvalidOption(t, err, o.value)
			}
			require.NoError(t, e.Close())
		}

		c, err := topics.NewCache("c", all...)
		if !allValid {
			require.ErrorIs(t, err, topics.ErrInvalidOption)
			e := topics.New(all...)
			_, err = e.CreateCache("c")
			require.ErrorIs(t, err, topics.ErrInvalidOption)
			require.NoError(t, e.Close())
			return
		}
		require.NoError(t, err)
		defer c.Close()
		fuzzOptionsTakeEffect(t, c, ring, maxSubs, maxTopics, maxValue, d, page, seq)
	})
}

// fuzzOptionsTakeEffect checks the limits of c where that is cheap.
func fuzzOptionsTakeEffect(t *testing.T, c *topics.Cache, ring, maxSubs, maxTopics, maxValue int, idle time.Duration, page, seq uint64) {
	ctx := context.Background()
	if maxValue <= 1<<16 {
		require.NoError(t, c.Publish(ctx, "size", make([]byte, maxValue)))
		require.ErrorIs(t, c.Publish(ctx, "size", make([]byte, maxValue+1)), topics.ErrValueTooLarge)
	}
	if maxTopics <= 16 && idle >= time.Minute { // else the sweeper may free slots meanwhile
		var err error
		for i := 0; err == nil && i <= maxTopics; i++ {
			err = c.PublishString(ctx, "topic-"+strconv.Itoa(i), "x")
		}
		require.ErrorIs(t, err, topics.ErrLimitExceeded) // "size" took one slot already, if it ran
	}
	if maxSubs <= 16 && maxTopics > 16 {
		var subs []*topics.Subscription[topics.Value]
		for range maxSubs {
			s, err := c.Subscribe(ctx, "subs")
			require.NoError(t, err)
			subs = append(subs, s)
		}
		_, err := c.Subscribe(ctx, "subs")
		require.ErrorIs(t, err, topics.ErrLimitExceeded)
		for _, s := range subs {
			require.NoError(t, s.Close())
		}
	}
	if ring <= 64 && maxTopics > 16 {
		// The ring keeps exactly ring items; a subscriber that resumes
		// anywhere starts within what is published, never fails.
		probe, err := c.Subscribe(ctx, "ring")
		require.NoError(t, err)
		defer probe.Close()
		n := ring + 3
		for i := 1; i <= n; i++ {
			require.NoError(t, c.PublishString(ctx, "ring", "")) // within any MaxValueSize
		}
		it, err := probe.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, uint64(n-ring+1), it.Sequence)
		require.Equal(t, uint64(n-ring), it.Missed)

		if maxSubs > 1 {
			s, err := c.Subscribe(ctx, "ring", topics.ResumeAt(page, seq))
			require.NoError(t, err)
			defer s.Close()
			if page == it.Page && seq > uint64(n) {
				return // after the newest: nothing to read yet
			}
			first, err := s.Next(ctx)
			require.NoError(t, err)
			require.GreaterOrEqual(t, first.Sequence, uint64(n-ring+1))
			want := max(seq, 1)
			if page != it.Page {
				want = 1
			}
			require.Equal(t, first.Sequence, max(want, uint64(n-ring+1)), "resumed at page %d, sequence %d", page, seq)
			require.Equal(t, first.Sequence-want, first.Missed)
		}
	}
}

// FuzzModel runs the input as a script of operations against the engine
// and a model of it (internal/model), comparing every result.
func FuzzModel(f *testing.F) {
	for _, s := range model.Seeds() {
		f.Add(s)
	}
	f.Fuzz(model.Run)
}
