package peerbench

import (
	"fmt"
	"testing"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/internal/benchkit"
)

// topic is the one topic every peer publishes to.
const topic = "bench"

// A Peer is one system of the comparison.
type Peer struct {
	benchkit.Spec
	// Slow says what the system does when a subscriber does not keep up.
	Slow string
	// Inline says that subscribers' callbacks run in the publisher's
	// goroutine: there is no subscriber goroutine to wake, so the wake-up
	// scenario does not apply.
	Inline bool
}

// Peers returns the systems of the comparison, topics (read with Next and
// with NextBatch) and the channel baseline first (all from benchkit, shared
// with the library's benchmarks).
func Peers() []Peer {
	return []Peer{
		{
			Spec: benchkit.Topics(),
			Slow: "drops the oldest items for that subscriber and tells it how many (Item.Missed); the publisher never waits",
		},
		{
			Spec: benchkit.TopicsBatch(),
			Slow: "as topics; its subscribers read with NextBatch, up to 64 items a call",
		},
		{
			Spec: benchkit.Channels(),
			Slow: "drops the new item for a subscriber whose 1,024-item buffer is full; nobody is told (the benchmark counts at the publisher)",
		},
		{
			Spec: benchkit.Spec{Name: "nats", New: newNATS},
			Slow: "drops once a subscription has 1,024 messages pending (set with SetPendingLimits), reports a slow-consumer error and counts Dropped(); the server may also cut a connection that does not read",
		},
		{
			Spec: benchkit.Spec{Name: "watermill", New: newWatermill, RebuildEvery: watermillRebuild,
				NoStall: "each publish leaves a goroutine per stalled subscriber waiting, for good, for an ack"},
			Slow: "neither drops nor blocks the publisher: a goroutine per message per subscriber waits until it is taken and acked, so memory grows without bound behind a stalled subscriber",
		},
		{
			Spec: benchkit.Spec{Name: "cskr-Pub", New: newCskr(false),
				NoStall: "Pub blocks for good once a stalled subscriber's channel is full"},
			Slow: "blocks the publisher (and every other subscriber) while any subscriber's 1,024-item channel is full",
		},
		{
			Spec: benchkit.Spec{Name: "cskr-TryPub", New: newCskr(true)},
			Slow: "drops the item for a subscriber whose 1,024-item channel is full; nobody is told",
		},
		{
			Spec: benchkit.Spec{Name: "EventBus", New: newEventBus(false),
				NoStall: "a callback that does not return blocks Publish for good"},
			Slow:   "blocks: the publisher calls every subscriber's callback itself, in its own goroutine",
			Inline: true,
		},
		{
			Spec: benchkit.Spec{Name: "EventBus-async", New: newEventBus(true),
				NoStall: "a callback that does not return blocks Publish for good"},
			Slow: "blocks: each callback runs in a new goroutine, one at a time per subscriber (transactional), and the publisher waits for a subscriber's previous callback to end",
		},
	}
}

// LosslessPeers returns the systems of the lossless comparison, which never
// drop an item, with a ring (or buffer) of ring items where they have one:
// topics with Lossless subscriptions and the channel baseline with a
// blocking send first. NATS with its pending limits off and EventBus have
// no such size, so they are only in the list of the default ring size.
func LosslessPeers(ring int) []Peer {
	size := fmt.Sprintf("%d-item", ring)
	if ring == topics.DefaultRingSize {
		size = "1,024-item"
	}
	peers := []Peer{
		{
			Spec: benchkit.TopicsLossless(ring),
			Slow: "never drops (subscriptions made with Lossless()): a publisher waits once the slowest lossless subscriber is a whole ring behind, " +
				"until it reads on; other subscriptions of the topic are not held back",
		},
		{
			Spec: benchkit.ChannelsBlocking(ring),
			Slow: "blocks: the publisher sends to each subscriber's channel in turn and waits while one is full, holding back every subscriber after it",
		},
		{
			Spec: losslessSpec("cskr-Pub", newCskrCapacity(ring, false)),
			Slow: "blocks the publisher (and every other subscriber) while any subscriber's " + size + " channel is full",
		},
	}
	if ring != topics.DefaultRingSize {
		return peers
	}
	return append(peers,
		Peer{
			Spec: losslessSpec("nats-unlimited", newNATSUnlimited),
			Slow: "never drops in the client (SetPendingLimits(-1, -1)) and never blocks the publisher either: " +
				"it buffers without bound in the subscription's pending queue, so memory grows behind a slow subscriber; " +
				"the server still cuts a connection whose outbound buffer passes max_pending (64 MB by default)",
		},
		Peer{
			Spec:   losslessSpec("EventBus", newEventBus(false)),
			Slow:   "blocks: the publisher calls every subscriber's callback itself, in its own goroutine",
			Inline: true,
		},
		Peer{
			Spec: losslessSpec("EventBus-async", newEventBus(true)),
			Slow: "blocks: each callback runs in a new goroutine, one at a time per subscriber (transactional), " +
				"and the publisher waits for a subscriber's previous callback to end",
		},
	)
}

func losslessSpec(name string, newSystem func(testing.TB) benchkit.System) benchkit.Spec {
	return benchkit.Spec{Name: name, New: newSystem, Lossless: true}
}

// Lookup returns the peer of that name: from Peers, or else from the
// lossless comparison with the default ring size.
func Lookup(name string) (Peer, bool) {
	for _, p := range append(Peers(), LosslessPeers(topics.DefaultRingSize)...) {
		if p.Name == name {
			return p, true
		}
	}
	return Peer{}, false
}
