package natsbridge_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics/natsbridge"
	"github.com/ringbus/topics/natsbridge/internal/natstest"
)

// TestIdleStreamsDeleted: a topic's stream is deleted once nothing was
// published to it for the idle timeout and no process subscribes to it; a
// stream that some process subscribes to is kept, however quiet. A topic
// used again after its stream was deleted starts a new page.
func TestIdleStreamsDeleted(t *testing.T) {
	const idle = 300 * time.Millisecond
	c := natstest.NewCluster(t, 3)
	a := newProcess(t, c, 0, natsbridge.WithIdleTimeout(idle), natsbridge.WithLogger(testLogger(t)))
	b := newProcess(t, c, 1, natsbridge.WithIdleTimeout(idle), natsbridge.WithLogger(testLogger(t)))
	js, err := jetstream.New(a.nc)
	require.NoError(t, err)
	// exists reports whether the topic's stream exists, and whether
	// JetStream answered.
	exists := func(topic string) (exists, answered bool) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := js.Stream(ctx, natsbridge.StreamOf(a.bridge, "j", topic))
		return err == nil, err == nil || errors.Is(err, jetstream.ErrStreamNotFound)
	}
	gone := func(topic string) func() bool {
		return func() bool {
			e, answered := exists(topic)
			return answered && !e
		}
	}

	ca, cb := a.cache(t, "j"), b.cache(t, "j")
	publish(t, ca, "idle", "v")
	s := subscribe(t, cb, "quiet")
	publish(t, ca, "quiet", "v")
	first := next(t, s)
	e, _ := exists("idle")
	require.True(t, e)

	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	require.NoError(t, poll(ctx, gone("idle")))
	e, _ = exists("quiet")
	assert.True(t, e, "a subscriber keeps its stream")

	// Once the subscription is gone and its process has dropped the topic
	// (after the engine's own idle timeout), the stream goes too.
	require.NoError(t, s.Close())
	require.NoError(t, poll(ctx, gone("quiet")))

	// Used again: a new page.
	s = subscribe(t, cb, "quiet")
	publish(t, ca, "quiet", "again")
	it := next(t, s)
	assert.Equal(t, "again", it.Value.String())
	assert.Greater(t, it.Page, first.Page)
	assert.Equal(t, uint64(1), it.Sequence)
}
