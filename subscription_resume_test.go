package topics_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

// resumeFixture returns a cache with ring size 8 whose topic "t" has items
// "1".."n", and the topic's page.
func resumeFixture(t *testing.T, n int) (*topics.Cache, uint64) {
	t.Helper()
	c := newCache(t, topics.WithRingSize(8))
	probe := subscribe(t, c, "t")
	for i := 1; i <= n; i++ {
		publish(t, c, "t", strconv.Itoa(i))
	}
	it := next(t, probe)
	require.NotZero(t, it.Sequence)
	require.NoError(t, probe.Close())
	return c, it.Page
}

// requireItems reads items and checks their sequences, values, Missed and
// page.
func requireItems(t *testing.T, s *topics.Subscription[topics.Value], page uint64, firstMissed uint64, seqs ...uint64) {
	t.Helper()
	for i, seq := range seqs {
		it := next(t, s)
		require.Equal(t, seq, it.Sequence, "item %d", i)
		require.Equal(t, strconv.FormatUint(seq, 10), it.Value.String(), "item %d", i)
		require.Equal(t, page, it.Page, "item %d", i)
		if i == 0 {
			require.Equal(t, firstMissed, it.Missed, "Missed of the first item")
		} else {
			require.Equal(t, uint64(0), it.Missed, "item %d", i)
		}
	}
}

func TestResumeWithinWindow(t *testing.T) {
	c, page := resumeFixture(t, 10) // holds 3..10
	for _, seq := range []uint64{3, 4, 7, 10} {
		t.Run(strconv.FormatUint(seq, 10), func(t *testing.T) {
			s := subscribe(t, c, "t", topics.ResumeAt(page, seq))
			var want []uint64
			for i := seq; i <= 10; i++ {
				want = append(want, i)
			}
			requireItems(t, s, page, 0, want...)
		})
	}
}

func TestResumeWithinWindowThenLive(t *testing.T) {
	c, page := resumeFixture(t, 5) // holds 1..5
	s := subscribe(t, c, "t", topics.ResumeAt(page, 2))
	publish(t, c, "t", "6")
	requireItems(t, s, page, 0, 2, 3, 4, 5, 6)
}

func TestResumeBeforeWindow(t *testing.T) {
	c, page := resumeFixture(t, 10) // holds 3..10
	for _, seq := range []uint64{1, 2} {
		t.Run(strconv.FormatUint(seq, 10), func(t *testing.T) {
			s := subscribe(t, c, "t", topics.ResumeAt(page, seq))
			requireItems(t, s, page, 3-seq, 3, 4, 5, 6, 7, 8, 9, 10)
		})
	}
	t.Run("far behind", func(t *testing.T) {
		c, page := resumeFixture(t, 100) // holds 93..100
		s := subscribe(t, c, "t", topics.ResumeAt(page, 40))
		requireItems(t, s, page, 93-40, 93, 94, 95, 96, 97, 98, 99, 100)
	})
}

func TestResumeUnknownPage(t *testing.T) {
	t.Run("items lost", func(t *testing.T) {
		c, page := resumeFixture(t, 10) // holds 3..10
		for _, seq := range []uint64{0, 1, 3, 9, 10, 11, 1000} {
			for _, other := range []uint64{page - 1, page + 1} {
				s := subscribe(t, c, "t", topics.ResumeAt(other, seq))
				requireItems(t, s, page, 2, 3, 4, 5, 6, 7, 8, 9, 10)
				require.NoError(t, s.Close())
			}
		}
	})
	t.Run("nothing lost", func(t *testing.T) {
		c, page := resumeFixture(t, 3) // holds 1..3
		s := subscribe(t, c, "t", topics.ResumeAt(page+1, 3))
		requireItems(t, s, page, 0, 1, 2, 3)
	})
	t.Run("new topic", func(t *testing.T) {
		// The topic does not exist yet, so any page is unknown: the
		// subscription starts at the first item the new topic gets.
		c := newCache(t, topics.WithRingSize(8))
		s := subscribe(t, c, "t", topics.ResumeAt(12345, 7))
		publish(t, c, "t", "1")
		publish(t, c, "t", "2")
		it := next(t, s)
		assert.Equal(t, uint64(1), it.Sequence)
		assert.Equal(t, uint64(0), it.Missed)
		it = next(t, s)
		assert.Equal(t, uint64(2), it.Sequence)
	})
}

func TestResumeBeyondNewest(t *testing.T) {
	for _, seq := range []uint64{11, 12, 50, 1 << 40, ^uint64(0)} {
		t.Run(strconv.FormatUint(seq, 10), func(t *testing.T) {
			c, page := resumeFixture(t, 10)
			s := subscribe(t, c, "t", topics.ResumeAt(page, seq))
			fresh := subscribe(t, c, "t")
			publish(t, c, "t", "11")
			publish(t, c, "t", "12")
			// Like a fresh subscription: no history, the next item, nothing missed.
			requireItems(t, s, page, 0, 11, 12)
			requireItems(t, fresh, page, 0, 11, 12)
		})
	}
}

func TestResumeSequenceZero(t *testing.T) {
	t.Run("all held", func(t *testing.T) {
		c, page := resumeFixture(t, 5) // holds 1..5
		s := subscribe(t, c, "t", topics.ResumeAt(page, 0))
		requireItems(t, s, page, 0, 1, 2, 3, 4, 5)
	})
	t.Run("some lost", func(t *testing.T) {
		c, page := resumeFixture(t, 10) // holds 3..10
		s := subscribe(t, c, "t", topics.ResumeAt(page, 0))
		requireItems(t, s, page, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	})
	t.Run("empty topic", func(t *testing.T) {
		c := newCache(t)
		s := subscribe(t, c, "t", topics.ResumeAt(0, 0))
		require.NoError(t, c.PublishString(context.Background(), "t", "1"))
		it := next(t, s)
		assert.Equal(t, uint64(1), it.Sequence)
		assert.Equal(t, uint64(0), it.Missed)
	})
}
