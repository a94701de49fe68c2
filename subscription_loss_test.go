package topics_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

func TestLossIsExact(t *testing.T) {
	cases := []struct{ ring, n int }{
		{4, 1}, {4, 3}, {4, 4}, {4, 5}, {4, 12}, {4, 13},
		{8, 7}, {8, 8}, {8, 9}, {8, 20}, {8, 100},
		{1, 1}, {1, 5},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("ring %d, %d items", tc.ring, tc.n), func(t *testing.T) {
			c := newCache(t, topics.WithRingSize(tc.ring))
			slow := subscribe(t, c, "t")
			fast := subscribe(t, c, "t")
			for i := 1; i <= tc.n; i++ {
				publish(t, c, "t", strconv.Itoa(i))
				it := next(t, fast)
				require.Equal(t, uint64(i), it.Sequence)
				require.Equal(t, uint64(0), it.Missed, "a subscriber that keeps up misses nothing")
				require.Equal(t, strconv.Itoa(i), it.Value.String())
			}

			lost := max(tc.n-tc.ring, 0)
			first := next(t, slow)
			assert.Equal(t, uint64(lost), first.Missed, "Missed is exactly the number lost")
			assert.Equal(t, uint64(lost+1), first.Sequence, "starts at the oldest item held")
			assert.Equal(t, strconv.Itoa(lost+1), first.Value.String())

			delivered, missed := 1, first.Missed
			for it := first; it.Sequence < uint64(tc.n); {
				it = next(t, slow)
				assert.Equal(t, uint64(0), it.Missed)
				assert.Equal(t, strconv.Itoa(int(it.Sequence)), it.Value.String())
				delivered++
				missed += it.Missed
			}
			assert.Equal(t, tc.n, delivered+int(missed), "delivered plus missed is what was published")
			assert.Equal(t, min(tc.n, tc.ring), delivered)
		})
	}
}

func TestLossRepeatedLapping(t *testing.T) {
	c := newCache(t, topics.WithRingSize(4))
	s := subscribe(t, c, "t")
	pub := func(from, to int) {
		for i := from; i <= to; i++ {
			publish(t, c, "t", strconv.Itoa(i))
		}
	}
	pub(1, 6) // holds 3..6
	it := next(t, s)
	assert.Equal(t, uint64(3), it.Sequence)
	assert.Equal(t, uint64(2), it.Missed)
	it = next(t, s)
	assert.Equal(t, uint64(4), it.Sequence)
	assert.Equal(t, uint64(0), it.Missed)

	pub(7, 16) // holds 13..16; 5..12 are lost to s
	it = next(t, s)
	assert.Equal(t, uint64(13), it.Sequence)
	assert.Equal(t, uint64(8), it.Missed, "items 5..12")
	assert.Equal(t, "13", it.Value.String())

	pub(17, 17)
	for want := uint64(14); want <= 17; want++ {
		it = next(t, s)
		assert.Equal(t, want, it.Sequence)
		assert.Equal(t, uint64(0), it.Missed)
	}
}

func TestLossConcurrent(t *testing.T) {
	const (
		publishers = 4
		each       = 2000
		total      = publishers * each
	)
	c := newCache(t, topics.WithRingSize(8))
	type tally struct {
		delivered, missed uint64
		err               error
	}
	readers := []struct {
		name string
		slow bool
	}{{"slow", true}, {"fast", false}}
	tallies := make([]tally, len(readers))
	subs := make([]*topics.Subscription[topics.Value], len(readers))
	for i := range subs {
		subs[i] = subscribe(t, c, "t")
	}

	var wg sync.WaitGroup
	for r, rd := range readers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 4*waitLimit)
			defer cancel()
			tl := &tallies[r]
			var prev uint64
			for prev < total {
				it, err := subs[r].Next(ctx)
				if err != nil {
					tl.err = fmt.Errorf("after sequence %d: %w", prev, err)
					return
				}
				if it.Sequence <= prev || it.Missed != it.Sequence-prev-1 {
					tl.err = fmt.Errorf("sequence %d with Missed %d after %d", it.Sequence, it.Missed, prev)
					return
				}
				prev = it.Sequence
				tl.delivered++
				tl.missed += it.Missed
				if rd.slow {
					runtime.Gosched()
					_ = fmt.Sprint(it.Value.String()) // some work per item
				}
			}
		})
	}
	publishConcurrently(t, c, "t", publishers, each)
	wg.Wait()
	for r, tl := range tallies {
		require.NoError(t, tl.err, readers[r].name)
		assert.Equal(t, uint64(total), tl.delivered+tl.missed, "%s reader: delivered %d + missed %d", readers[r].name, tl.delivered, tl.missed)
		t.Logf("%s reader: delivered %d, missed %d", readers[r].name, tl.delivered, tl.missed)
	}
}

// stamp is a value whose every word repeats its identity, so that a torn or
// mixed-up value is visible.
type stamp[A any] struct {
	Publisher, Index int
	Fill             A
}

func fill[A any](p, i int, a *A) {
	s := any(a)
	switch f := s.(type) {
	case *[1]int:
		f[0] = p*1_000_000 + i
	case *[512]int:
		for k := range f {
			f[k] = p*1_000_000 + i + k
		}
	}
}

func checkFill[A any](p, i int, a *A) bool {
	var want A
	fill(p, i, &want)
	return any(*a) == any(want)
}

func TestLossConcurrentTyped(t *testing.T) {
	t.Run("small values", func(t *testing.T) { lossConcurrentTyped[[1]int](t) })
	// Entries bigger than any sensible batch of them.
	t.Run("large values", func(t *testing.T) { lossConcurrentTyped[[512]int](t) })
}

func lossConcurrentTyped[A any](t *testing.T) {
	const (
		publishers = 4
		each       = 1500
		total      = publishers * each
	)
	for _, size := range []int{1, 2, 8, 64} {
		t.Run(fmt.Sprintf("ring %d", size), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 4*waitLimit)
			defer cancel()
			c := newCache(t, topics.WithRingSize(size))
			h, err := topics.TopicOf[stamp[A]](c, "t")
			require.NoError(t, err)
			const readers = 2
			subs := make([]*topics.Subscription[stamp[A]], readers)
			for i := range subs {
				s, err := h.Subscribe(ctx)
				require.NoError(t, err)
				t.Cleanup(func() { _ = s.Close() })
				subs[i] = s
			}
			errs := make([]error, readers)
			var wg sync.WaitGroup
			for r := range readers {
				wg.Go(func() {
					last := map[int]int{}
					var prev, delivered, missed uint64
					for prev < total {
						it, err := subs[r].Next(ctx)
						if err != nil {
							errs[r] = fmt.Errorf("after %d: %w", prev, err)
							return
						}
						v := it.Value
						switch {
						case it.Sequence <= prev || it.Missed != it.Sequence-prev-1:
							errs[r] = fmt.Errorf("sequence %d missed %d after %d", it.Sequence, it.Missed, prev)
						case !checkFill(v.Publisher, v.Index, &v.Fill):
							errs[r] = fmt.Errorf("torn value at sequence %d: %d/%d", it.Sequence, v.Publisher, v.Index)
						case v.Index <= last[v.Publisher]:
							errs[r] = fmt.Errorf("publisher %d went back from %d to %d", v.Publisher, last[v.Publisher], v.Index)
						}
						if errs[r] != nil {
							return
						}
						last[v.Publisher] = v.Index
						prev = it.Sequence
						delivered++
						missed += it.Missed
						if r == 0 {
							runtime.Gosched()
						}
					}
					if delivered+missed != total {
						errs[r] = fmt.Errorf("delivered %d + missed %d != %d", delivered, missed, total)
					}
				})
			}
			var pwg sync.WaitGroup
			for p := range publishers {
				pwg.Go(func() {
					for i := 1; i <= each; i++ {
						v := stamp[A]{Publisher: p, Index: i}
						fill(p, i, &v.Fill)
						if err := h.Publish(ctx, v); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			pwg.Wait()
			wg.Wait()
			for r, err := range errs {
				require.NoError(t, err, "reader %d", r)
			}
		})
	}
}
