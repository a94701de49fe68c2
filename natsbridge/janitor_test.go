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
	a := newProcess(t, c, 0, natsbridge.WithIdleTimeout(idle))
	b := newProcess(t, c, 1, natsbridge.WithIdleTimeout(idle))
	js, err := jetstream.New(a.nc)
	require.NoError(t, err)
	exists := func(topic string) bool {
		_, err := js.Stream(t.Context(), natsbridge.StreamOf(a.bridge, "j", topic))
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return false
		}
		require.NoError(t, err)
		return true
	}

	ca, cb := a.cache(t, "j"), b.cache(t, "j")
	publish(t, ca, "idle", "v")
	s := subscribe(t, cb, "quiet")
	publish(t, ca, "quiet", "v")
	first := next(t, s)
	require.True(t, exists("idle"))

	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	require.NoError(t, poll(ctx, func() bool { return !exists("idle") }))
	assert.True(t, exists("quiet"), "a subscriber keeps its stream")

	// Once the subscription is gone and its process has dropped the topic
	// (after the engine's own idle timeout), the stream goes too.
	require.NoError(t, s.Close())
	require.NoError(t, poll(ctx, func() bool { return !exists("quiet") }))

	// Used again: a new page.
	s = subscribe(t, cb, "quiet")
	publish(t, ca, "quiet", "again")
	it := next(t, s)
	assert.Equal(t, "again", it.Value.String())
	assert.Greater(t, it.Page, first.Page)
	assert.Equal(t, uint64(1), it.Sequence)
}
