package topicstest_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/topicstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeTB records what a helper reports, so that failures can be tested.
// Fatalf ends the goroutine, as testing's does.
type fakeTB struct {
	name string

	mu       sync.Mutex
	errors   []string
	fatal    string
	cleanups []func()
}

func (f *fakeTB) Helper()      {}
func (f *fakeTB) Name() string { return f.name }

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

// run runs fn as a test body on its own goroutine, waits for it to return or
// fail, and then runs the cleanups, last registered first.
func (f *fakeTB) run(fn func(tb topicstest.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	f.mu.Lock()
	cleanups := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
}

func topicOf[T any](t testing.TB, c *topics.Cache, name string) *topics.Topic[T] {
	t.Helper()
	tp, err := topics.TopicOf[T](c, name)
	require.NoError(t, err)
	return tp
}

func TestRecorder(t *testing.T) {
	c := topicstest.NewCache(t)
	tp := topicOf[int](t, c, "numbers")
	rec := topicstest.NewRecorder(t, tp)
	go func() {
		for i := 1; i <= 5; i++ {
			assert.NoError(t, tp.Publish(context.Background(), i*i))
		}
	}()
	items := rec.WaitFor(5)
	require.Len(t, items, 5)
	for i, it := range items {
		assert.Equal(t, uint64(i+1), it.Sequence)
		assert.Equal(t, (i+1)*(i+1), it.Value)
	}
	assert.Equal(t, []int{1, 4, 9, 16, 25}, rec.Values())
	assert.Equal(t, 5, rec.Len())
	assert.Len(t, rec.WaitFor(2), 2, "WaitFor returns the first n")
	assert.True(t, rec.AssertNoLoss())
	assert.True(t, rec.AssertSequential())
	assert.NoError(t, rec.Err())

	rec.Stop()
	rec.Stop()
	assert.ErrorIs(t, rec.Err(), topics.ErrClosed)
	assert.Len(t, rec.Items(), 5, "what was recorded stays readable")
}

func TestValueRecorderAndWaitUntil(t *testing.T) {
	c := topicstest.NewCache(t)
	rec := topicstest.NewValueRecorder(t, c, "news")
	for _, s := range []string{"rain", "sun", "snow"} {
		require.NoError(t, c.PublishString(context.Background(), "news", s))
	}
	items := rec.WaitUntil("sun", func(items []topics.Item[topics.Value]) bool {
		for _, it := range items {
			if it.Value.String() == "sun" {
				return true
			}
		}
		return false
	})
	assert.GreaterOrEqual(t, len(items), 2)
	assert.Equal(t, "rain", items[0].Value.String())
}

func TestNewCacheNamedAfterTest(t *testing.T) {
	t.Run("with spaces/and#marks", func(t *testing.T) {
		c := topicstest.NewCache(t)
		assert.Equal(t, "TestNewCacheNamedAfterTest_with_spaces_and_marks", c.Name())
	})
	f := &fakeTB{}
	f.run(func(tb topicstest.TB) {
		assert.Equal(t, "topicstest", topicstest.NewCache(tb).Name())
	})
}

// NewCache and NewEngine close what they return when the test ends; a bad
// option fails the test.
func TestCleanup(t *testing.T) {
	f := &fakeTB{name: "T"}
	var c *topics.Cache
	var e *topics.Engine
	var rec *topicstest.Recorder[topics.Value]
	f.run(func(tb topicstest.TB) {
		c = topicstest.NewCache(tb)
		e = topicstest.NewEngine(tb, topics.WithRingSize(8))
		_, err := e.CreateCache("x")
		assert.NoError(t, err)
		rec = topicstest.NewValueRecorder(tb, c, "t")
	})
	assert.Empty(t, f.fatal)
	assert.ErrorIs(t, c.PublishString(context.Background(), "t", "x"), topics.ErrClosed)
	_, err := e.CreateCache("y")
	assert.ErrorIs(t, err, topics.ErrClosed)
	assert.ErrorIs(t, rec.Err(), topics.ErrClosed, "the recorder was stopped")

	f = &fakeTB{name: "T"}
	f.run(func(tb topicstest.TB) {
		topicstest.NewCache(tb, topics.WithRingSize(3))
		t.Error("NewCache returned despite a bad option")
	})
	assert.Contains(t, f.fatal, "WithRingSize(3)")
}

func TestRecorderRefused(t *testing.T) {
	f := &fakeTB{name: "T"}
	f.run(func(tb topicstest.TB) {
		c := topicstest.NewCache(tb)
		topicstest.NewValueRecorder(tb, c, "no spaces allowed")
		t.Error("NewValueRecorder returned")
	})
	assert.Contains(t, f.fatal, `topicstest: recording topic "no spaces allowed"`)
	assert.Contains(t, f.fatal, "invalid name")
}

// In a synctest bubble the deadline is on the fake clock: a wait that can
// never be satisfied fails at once, with a message that says what it waited
// for and what came.
func TestWaitForTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeTB{name: "T"}
		start := time.Now()
		f.run(func(tb topicstest.TB) {
			c := topicstest.NewCache(tb)
			rec := topicstest.NewValueRecorder(tb, c, "orders")
			assert.NoError(t, c.PublishString(context.Background(), "orders", "book"))
			rec.WaitFor(3)
			t.Error("WaitFor returned")
		})
		assert.Equal(t, topicstest.DefaultTimeout, time.Since(start))
		assert.Equal(t, `topicstest: waited 5s for 3 item(s) on topic "orders"; 1 item(s) arrived: #1 book`, f.fatal)
	})
}

func TestWaitUntilTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeTB{name: "T"}
		f.run(func(tb topicstest.TB) {
			c := topicstest.NewCache(tb)
			tp := topicOf[int](t, c, "n")
			rec := topicstest.NewRecorder(tb, tp)
			rec.Timeout = time.Minute
			for i := range 12 {
				assert.NoError(t, tp.Publish(context.Background(), i))
			}
			rec.WaitUntil("a negative number", func(items []topics.Item[int]) bool {
				return slices.ContainsFunc(items, func(it topics.Item[int]) bool { return it.Value < 0 })
			})
			t.Error("WaitUntil returned")
		})
		assert.Equal(t, `topicstest: waited 1m0s for a negative number on topic "n"; 12 item(s) arrived: … (2 more) #3 2; #4 3; #5 4; #6 5; #7 6; #8 7; #9 8; #10 9; #11 10; #12 11`, f.fatal)
	})
}

// A wait fails at once, saying why, when the recording ends.
func TestWaitFailsWhenRecordingEnds(t *testing.T) {
	f := &fakeTB{name: "T"}
	f.run(func(tb topicstest.TB) {
		c := topicstest.NewCache(tb)
		rec := topicstest.NewValueRecorder(tb, c, "t")
		rec.Timeout = time.Hour
		assert.NoError(t, c.Close())
		rec.WaitFor(1)
		t.Error("WaitFor returned")
	})
	assert.Contains(t, f.fatal, `topicstest: waited for 1 item(s) on topic "t", but the recording ended (topics: cache "T" closed); no item arrived`)
}

func TestAssertNoLossReportsLoss(t *testing.T) {
	c := topicstest.NewCache(t, topics.WithRingSize(4))
	tp := topicOf[int](t, c, "t")
	for i := 1; i <= 10; i++ {
		require.NoError(t, tp.Publish(context.Background(), i))
	}
	page := tp.Stats().Page
	// Resuming from the first item, long gone: the first item reports a loss.
	rec := topicstest.NewLossyRecorder(t, tp, topics.ResumeAt(page, 1))
	rec.WaitFor(4)

	f := &fakeTB{name: "T"}
	assert.False(t, topicstest.AssertNoLoss(f, rec.Items()))
	assert.Equal(t, []string{`topicstest: 6 item(s) lost: the first loss is of 6 item(s) before #7 on topic "t" (item 1 of 4 received)`}, f.errors)
	assert.True(t, topicstest.AssertSequential(f, rec.Items()), "7, 8, 9, 10 are consecutive")
}

func TestAssertSequentialReportsBreaks(t *testing.T) {
	items := func(seqs ...uint64) []topics.Item[string] {
		var out []topics.Item[string]
		for _, s := range seqs {
			out = append(out, topics.Item[string]{Topic: "t", Page: 1, Sequence: s})
		}
		return out
	}
	for _, tc := range []struct {
		items []topics.Item[string]
		want  string
	}{
		{items(), ""},
		{items(5), ""},
		{items(1, 2, 3), ""},
		{items(1, 2, 4), `topicstest: items not sequential: #4 follows #2 (item 3 of 3, topic "t")`},
		{items(1, 3, 2), `topicstest: items not sequential: #3 follows #1 (item 2 of 3, topic "t")`},
		{items(1, 1), `topicstest: items not sequential: #1 follows #1 (item 2 of 2, topic "t")`},
		{append(items(1), topics.Item[string]{Topic: "t", Page: 2, Sequence: 2}), `topicstest: items not sequential: item 2 of 2 is of page 2, the one before of page 1`},
	} {
		f := &fakeTB{}
		ok := topicstest.AssertSequential(f, tc.items)
		if tc.want == "" {
			assert.True(t, ok)
			assert.Empty(t, f.errors)
		} else {
			assert.False(t, ok)
			assert.Equal(t, []string{tc.want}, f.errors)
		}
	}
}

// The whole kit inside a bubble: no real time passes, nothing is left
// behind when the bubble ends.
func TestInsideSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := topicstest.NewEngine(t)
		c, err := e.CreateCache("bubble")
		require.NoError(t, err)
		tp := topicOf[string](t, c, "ticks")
		rec := topicstest.NewRecorder(t, tp)
		sub, err := tp.Subscribe(context.Background())
		require.NoError(t, err)
		t.Cleanup(func() { _ = sub.Close() })
		go func() {
			for i := range 3 {
				time.Sleep(time.Second) // fake time
				assert.NoError(t, tp.Publish(context.Background(), fmt.Sprint("tick ", i)))
			}
		}()
		start := time.Now()
		assert.Equal(t, "tick 0", topicstest.Next(t, sub).Value)
		items := rec.WaitFor(3)
		assert.Equal(t, 3*time.Second, time.Since(start))
		assert.Equal(t, "tick 2", items[2].Value)
		rec.AssertNoLoss()
		rec.AssertSequential()
	})
}

func TestNextTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeTB{name: "T"}
		f.run(func(tb topicstest.TB) {
			c := topicstest.NewCache(tb)
			s, err := c.Subscribe(context.Background(), "quiet")
			assert.NoError(t, err)
			defer s.Close()
			topicstest.Next(tb, s)
			t.Error("Next returned")
		})
		assert.Equal(t, "topicstest: Next: no item within 5s: context deadline exceeded", f.fatal)
	})
}

// A Recorder is lossless by default: publishers wait for it rather than
// overwrite what it has not recorded, however small the ring.
func TestRecorderLosslessByDefault(t *testing.T) {
	const n = 1000
	c := topicstest.NewCache(t, topics.WithRingSize(16))
	tp := topicOf[int](t, c, "burst")
	rec := topicstest.NewRecorder(t, tp)
	vrec := topicstest.NewValueRecorder(t, c, "vburst")
	for i := 1; i <= n; i++ {
		require.NoError(t, tp.Publish(context.Background(), i))
		require.NoError(t, c.PublishString(context.Background(), "vburst", fmt.Sprint(i)))
	}
	assert.Len(t, rec.WaitFor(n), n)
	assert.True(t, rec.AssertNoLoss())
	assert.True(t, rec.AssertSequential())
	assert.Len(t, vrec.WaitFor(n), n)
	assert.True(t, vrec.AssertNoLoss())
	assert.True(t, vrec.AssertSequential())
}

// NewRecorder and NewValueRecorder subscribe with topics.Lossless, which
// topics.NoLossless refuses; NewLossyRecorder subscribes without it.
func TestLossyRecorderIsAnOrdinarySubscriber(t *testing.T) {
	for name, start := range map[string]func(tb topicstest.TB, c *topics.Cache){
		"NewRecorder": func(tb topicstest.TB, c *topics.Cache) {
			topicstest.NewRecorder(tb, topicOf[int](t, c, "t"), topics.NoLossless())
		},
		"NewValueRecorder": func(tb topicstest.TB, c *topics.Cache) {
			topicstest.NewValueRecorder(tb, c, "t", topics.NoLossless())
		},
	} {
		f := &fakeTB{name: "T"}
		f.run(func(tb topicstest.TB) {
			start(tb, topicstest.NewCache(tb))
			t.Errorf("%s returned", name)
		})
		assert.Contains(t, f.fatal, "Lossless is not allowed", name)
	}

	c := topicstest.NewCache(t, topics.WithRingSize(4))
	tp := topicOf[int](t, c, "t")
	rec := topicstest.NewLossyRecorder(t, tp, topics.NoLossless())
	for i := 1; i <= 3; i++ {
		require.NoError(t, tp.Publish(context.Background(), i))
	}
	assert.Len(t, rec.WaitFor(3), 3)
	assert.Equal(t, []int{1, 2, 3}, rec.Values())
}
