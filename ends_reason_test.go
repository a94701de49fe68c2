package topics_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

// The first end of a subscription is the one Next reports from then on:
// closing a subscription that its cache's deletion already ended must not
// turn "cache not found" into a plain "closed". (FuzzModel found this: Close
// used to replace the reason.)
func TestEndReasonSurvivesClose(t *testing.T) {
	e := topics.New()
	defer e.Close()
	c, err := e.CreateCache("c")
	require.NoError(t, err)
	s, err := c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	require.NoError(t, e.DeleteCache("c"))

	_, err = s.Next(context.Background())
	require.ErrorIs(t, err, topics.ErrCacheNotFound)
	require.NoError(t, s.Close())
	_, err = s.Next(context.Background())
	assert.ErrorIs(t, err, topics.ErrClosed)
	assert.ErrorIs(t, err, topics.ErrCacheNotFound, "the deletion is still the reason after Close")

	// Deleted and then closed before anybody called Next: the same.
	c, err = e.CreateCache("c")
	require.NoError(t, err)
	s, err = c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	require.NoError(t, e.DeleteCache("c"))
	require.NoError(t, s.Close())
	_, err = s.Next(context.Background())
	assert.ErrorIs(t, err, topics.ErrCacheNotFound)

	// The other way round: closed first, then deleted: "closed" it stays.
	c, err = e.CreateCache("c")
	require.NoError(t, err)
	s, err = c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, e.DeleteCache("c"))
	_, err = s.Next(context.Background())
	assert.ErrorIs(t, err, topics.ErrClosed)
	assert.NotErrorIs(t, err, topics.ErrCacheNotFound)
}
