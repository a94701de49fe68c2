package peerbench

import "github.com/ringbus/topics/internal/benchkit"

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

// Peers returns the systems of the comparison, topics and the channel
// baseline first.
func Peers() []Peer {
	return []Peer{
		{
			Spec: benchkit.Spec{Name: "topics", New: newTopics},
			Slow: "drops the oldest items for that subscriber and tells it how many (Item.Missed); the publisher never waits",
		},
		{
			Spec: benchkit.Spec{Name: "channels", New: newChannels},
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

// Lookup returns the peer of that name.
func Lookup(name string) (Peer, bool) {
	for _, p := range Peers() {
		if p.Name == name {
			return p, true
		}
	}
	return Peer{}, false
}
