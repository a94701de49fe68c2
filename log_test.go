package topics_test

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

// logCapture is a slog.Handler that keeps what is logged, for tests.
type logCapture struct {
	mu      sync.Mutex
	records []logRecord
}

type logRecord struct {
	level string
	msg   string
	attrs map[string]string
}

func (lc *logCapture) logger() *slog.Logger { return slog.New(lc) }

func (lc *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (lc *logCapture) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level.String(), msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	lc.mu.Lock()
	lc.records = append(lc.records, rec)
	lc.mu.Unlock()
	return nil
}

func (lc *logCapture) WithAttrs([]slog.Attr) slog.Handler { return lc }
func (lc *logCapture) WithGroup(string) slog.Handler      { return lc }

func (lc *logCapture) all() []logRecord {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return append([]logRecord(nil), lc.records...)
}

func (lc *logCapture) find(msg string) []logRecord {
	var out []logRecord
	for _, r := range lc.all() {
		if r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}

const (
	msgMissing  = "topics: subscriber is missing items"
	msgCaughtUp = "topics: subscriber caught up"
)

func publishN(t testing.TB, c *topics.Cache, topic string, n int) {
	t.Helper()
	for range n {
		publish(t, c, topic, "x")
	}
}

// readUpTo reads items until the one with sequence seq.
func readUpTo(t testing.TB, s *topics.Subscription[topics.Value], seq uint64) {
	t.Helper()
	for {
		if it := next(t, s); it.Sequence >= seq {
			return
		}
	}
}

// A loss episode is logged once when it starts and once when the subscriber
// catches up, however many times it is lapped in between.
func TestLossEpisodeLoggedOnce(t *testing.T) {
	logs := &logCapture{}
	c := newCache(t, topics.WithRingSize(4), topics.WithLogger(logs.logger()))
	s := subscribe(t, c, "prices")

	publishN(t, c, "prices", 4) // exactly the ring: no loss
	readUpTo(t, s, 4)
	assert.Empty(t, logs.all(), "a subscriber that keeps up is not logged")

	publishN(t, c, "prices", 10) // 5..14; 5..10 are lost
	it := next(t, s)
	require.Equal(t, uint64(11), it.Sequence)
	require.Equal(t, uint64(6), it.Missed)
	publishN(t, c, "prices", 10) // 15..24: lapped again within the episode
	it = next(t, s)
	require.Equal(t, uint64(21), it.Sequence)
	require.Equal(t, uint64(9), it.Missed)

	recs := logs.all()
	require.Len(t, recs, 1, "the episode is logged once, not once per loss")
	r := recs[0]
	assert.Equal(t, msgMissing, r.msg)
	assert.Equal(t, "WARN", r.level)
	assert.Equal(t, "test-cache", r.attrs["cache"])
	assert.Equal(t, "prices", r.attrs["topic"])
	assert.Equal(t, strconv.FormatUint(it.Page, 10), r.attrs["page"])
	assert.Equal(t, "11", r.attrs["sequence"])
	assert.Equal(t, "6", r.attrs["missed"])
	assert.Equal(t, "6", r.attrs["missed_total"])

	readUpTo(t, s, 24) // catches up: the episode ends
	recs = logs.all()
	require.Len(t, recs, 2)
	r = recs[1]
	assert.Equal(t, msgCaughtUp, r.msg)
	assert.Equal(t, "INFO", r.level)
	assert.Equal(t, "24", r.attrs["sequence"])
	assert.Equal(t, "15", r.attrs["missed_episode"])
	assert.Equal(t, "15", r.attrs["missed_total"])

	publishN(t, c, "prices", 3) // keeps up: nothing
	readUpTo(t, s, 27)
	require.Len(t, logs.all(), 2)

	publishN(t, c, "prices", 6) // a new episode
	next(t, s)
	recs = logs.find(msgMissing)
	require.Len(t, recs, 2, "a new episode is logged again")
	assert.Equal(t, "2", recs[1].attrs["missed"])
	assert.Equal(t, "17", recs[1].attrs["missed_total"])
}

// Each subscription has its own episodes.
func TestLossEpisodePerSubscription(t *testing.T) {
	logs := &logCapture{}
	c := newCache(t, topics.WithRingSize(2), topics.WithLogger(logs.logger()))
	a := subscribe(t, c, "t")
	b := subscribe(t, c, "t")
	publishN(t, c, "t", 5)
	next(t, a)
	next(t, b)
	assert.Len(t, logs.find(msgMissing), 2)
}

// WithLogger given to New is the default of every cache; a cache can turn it
// off with WithLogger(nil).
func TestLoggerFromEngine(t *testing.T) {
	logs := &logCapture{}
	e := topics.New(topics.WithRingSize(1), topics.WithLogger(logs.logger()))
	defer e.Close()
	loud, err := e.CreateCache("loud")
	require.NoError(t, err)
	quiet, err := e.CreateCache("quiet", topics.WithLogger(nil))
	require.NoError(t, err)
	for _, c := range []*topics.Cache{loud, quiet} {
		s := subscribe(t, c, "t")
		publishN(t, c, "t", 3)
		require.Equal(t, uint64(2), next(t, s).Missed)
	}
	recs := logs.all()
	require.Len(t, recs, 2, "start and end of loud's episode (ring of 1: the item read is the newest)")
	assert.Equal(t, "loud", recs[0].attrs["cache"])
	assert.Equal(t, msgMissing, recs[0].msg)
	assert.Equal(t, msgCaughtUp, recs[1].msg)
}

// Delivery allocates nothing, logger or not, while nothing is logged.
func TestDeliveryDoesNotAllocate(t *testing.T) {
	for _, logger := range []*slog.Logger{nil, (&logCapture{}).logger()} {
		c := newCache(t, topics.WithRingSize(1024), topics.WithLogger(logger))
		s := subscribe(t, c, "t")
		publishN(t, c, "t", 1000)
		ctx := context.Background()
		allocs := testing.AllocsPerRun(900, func() {
			if _, err := s.Next(ctx); err != nil {
				t.Fatal(err)
			}
		})
		assert.Zero(t, allocs, "logger %v", logger != nil)
	}
}
