// Package natsbridge shares the topics of [topics] caches among processes
// through NATS JetStream: the replicas of a service publish and subscribe
// to the same topics, and every subscriber in every process sees the same
// items, numbered the same way, in the same order.
//
//	nc, _ := nats.Connect(url)                 // a JetStream-enabled server or cluster
//	bridge, _ := natsbridge.New(nc)
//	engine := bridge.NewEngine()               // caches made by it are shared
//	defer bridge.Close()                       // after the engine: defers run last first
//	defer engine.Close()
//	cache, _ := engine.CreateCache("chat")
//	sub, _ := cache.Subscribe(ctx, "room/lobby") // sees what any process publishes
//
// Code written against a *topics.Cache — Publish, PublishString, Subscribe,
// TopicOf[topics.Value], Handle, ResumeAt, package topicstest — works
// unchanged on a shared cache. Caches share a topic when they have the same
// name and their bridges the same prefix ([WithPrefix]).
//
// # How it works
//
// JetStream numbers the items: each topic is a stream (R1, in memory, by
// default), and an item's sequence is its stream sequence. A stream's first
// message is a marker that carries the topic's page; every item is published
// on the condition that the marker of the page its publisher knows is still
// the stream's first message, so JetStream refuses any item that would land
// on another page than the one it names. The stream republishes each item
// it stores, with its sequence and page, on a subject that every process
// with subscribers to the topic subscribes to: one NATS subscription per
// topic per process, however many subscriptions the topic has in that
// process. The process puts each item into the topic's ring ([topics.Feed]),
// from which its subscriptions read as they read any topic.
//
// A process opening a topic (its first subscription) puts the items the
// stream holds into the ring before the topic is ready, so that ResumeAt
// finds them; a process that misses items (its connection dropped, or NATS
// dropped messages for it) fetches them from the stream before it puts the
// next one. Streams keep the newest [WithWindow] items, the ring size of the
// caches that [Bridge.NewEngine] and [Bridge.NewCache] make.
//
// # Guarantees
//
// Within a page, the same as in one process: one order per topic, the same
// (page, sequence, publisher, value) for an item in every process, items of
// one publisher in its order, and a publish that returns before another
// starts numbered before it. Item.Missed is exact, for a subscriber that
// fell behind and for items its process could not fetch again. ResumeAt
// works on every process, within the window. Pages grow and fit in 53 bits
// (topics.MaxPage). Publish returns once the item is numbered and, if this
// process has the topic open, in its ring: a subscription opened afterwards
// in the same process starts after it.
//
// What differs from one process:
//
//   - A new subscription starts after the newest item its process has
//     received: an item published elsewhere a moment before may still be on
//     its way, and is then delivered.
//   - An error from Publish wrapping [ErrUnavailable] may come after JetStream
//     stored the item (its acknowledgement was lost); the item is then
//     delivered as any other. Publish fails at once, sending nothing, while
//     the connection is down.
//   - A Lossless subscription holds up the publishers of its own process only,
//     and never makes Publish fail.
//   - Topics carry topics.Value only: TopicOf for another type returns an
//     error wrapping topics.ErrTopicType, since a Go value does not cross a
//     process without an encoding (encode it into a Value yourself).
//   - WithPublishRate limits each process on its own.
//
// # Failures
//
// The server of a topic's stream dies: the next publish finds the stream
// offline, deletes it and makes it again on the servers left, with a new
// page. Subscriptions everywhere stay open and go on with the new page; the
// items of the old page that a process had not received are lost to it
// without being counted, as at any page change. The server restarts before
// that: its memory stream comes back empty, without its marker, so it takes
// no item until a bridge marks it with a new page. With [WithReplicas](3)
// JetStream keeps the stream, and its page, through the loss of a server.
//
// NATS is unreachable: Publish and the opening of a topic fail with
// [ErrUnavailable] within their context and [WithTimeout]; open
// subscriptions stay open, receive nothing, and when the connection is back
// receive what was published meanwhile that the stream still holds, the rest
// counted in Missed. Publishes in flight when a server dies get no answer
// and fail after the timeout.
//
// # Idle topics
//
// A topic's stream is deleted once nothing was published to it for
// [WithIdleTimeout] and no process subscribes to it: every bridge looks for
// such streams now and then, and asks the processes (a probe on the subject
// they subscribe to) before deleting one. Used again, the topic starts a new
// page, as a topic dropped for idleness does in one process.
//
// # Limits
//
// New pages come from the wall clock of the process that starts them, forced
// above the pages it has seen: processes whose clocks are further apart than
// the time between two pages of a topic could start a page below the last
// one, which the other processes then cannot follow. Each topic costs the
// cluster a stream (50 to 85 KB of heap and two goroutines on its server,
// measured in-process) and each process that subscribes to it a NATS
// subscription and a goroutine. The bridge uses JetStream's default API
// subjects ($JS.API), without domains.
//
// The README of this module has the design in more detail, how to run it
// against a NATS cluster, and benchmark figures.
package natsbridge
