package natsbridge_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/natsbridge/internal/natstest"
)

// TestSharedTopic: three processes, one per server; whatever any of them
// publishes reaches the subscribers of all of them as the same items, in
// the same order.
func TestSharedTopic(t *testing.T) {
	c := natstest.NewCluster(t, 3)
	var caches []*topics.Cache
	var subs []*topics.Subscription[topics.Value]
	for i := range 3 {
		p := newProcess(t, c, i)
		cache := p.cache(t, "chat")
		caches = append(caches, cache)
		subs = append(subs, subscribe(t, cache, "room/lobby"), subscribe(t, cache, "room/lobby"))
	}
	for round := range 3 {
		for i, cache := range caches {
			publish(t, cache, "room/lobby", fmt.Sprintf("%d from %d", round, i))
		}
	}
	var first []topics.Item[topics.Value]
	for si, s := range subs {
		var got []topics.Item[topics.Value]
		for range 9 {
			got = append(got, next(t, s))
		}
		for i, it := range got {
			assert.Equal(t, uint64(i+1), it.Sequence)
			assert.Zero(t, it.Missed)
			assert.Equal(t, got[0].Page, it.Page)
			assert.True(t, it.Value.IsText())
		}
		if si == 0 {
			first = got
			continue
		}
		require.Equal(t, first, got, "subscriber %d", si)
	}
}
