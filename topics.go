// Package topics is an embeddable, in-process publish/subscribe engine.
//
// It gives a Go program what a serverless topics service gives over the
// network, without a network or a server: caches are namespaces, a topic
// comes into being on its first publish or subscribe, delivery is
// fire-and-forget to every current subscriber, and a subscriber that falls
// behind loses the oldest items and is told exactly how many.
//
// Each topic is a lock-free broadcast ring: a publish writes one slot, however
// many subscribers there are, and each subscription reads the ring with its
// own cursor. A subscription costs a cursor, not a queue, and a publisher
// never waits for a subscriber.
//
// # Rules of use
//
// Lifecycle. An [Engine] holds named caches; a [Cache] can also stand alone
// ([NewCache]). Topics need no creation: publish or subscribe to a name. A
// topic with no subscribers and no publishes for a while (see
// [WithTopicIdleTimeout]) is dropped; when it is used again it starts a new
// page. Close what you open: an Engine, a standalone Cache, and every
// Subscription you do not read to its end. Close is idempotent everywhere.
//
// Ordering. Every topic has one sequence 1, 2, 3, … per page. Every
// subscriber sees items in that order, each at most once. A publish that
// returns before another starts gets the lower number, so items of one
// publisher keep their order.
//
// Fire-and-forget. A new subscription starts after the newest item: it sees
// no history (unless it asks to resume, with [ResumeAt]). Publishing to a topic
// with no subscribers succeeds and the item is kept in the ring for resumers.
//
// Slow subscribers. A topic keeps its newest RingSize items ([WithRingSize]).
// A subscriber that falls further behind skips to the oldest item still
// held, and that item's [Item.Missed] says how many it lost. Publishers are
// never slowed down by such a subscriber. A subscription opened with
// [Lossless] is the exception, by request: publishers wait for it rather
// than overwrite what it has not read (see Lossless for the rule that keeps
// its reader from waiting for itself), and it never reports a loss: it
// delivers, or it ends.
//
// Accounting. For every subscription, what it received (Delivered), what it
// was told it missed (Missed) and what it had not read when it ended
// (Unread) add up to what was published to its topic while it was open; an
// open subscription's Lag stands for Unread ([SubscriptionStats]).
//
// Ends. [Subscription.Next] returns an error wrapping [ErrClosed] once the
// subscription is closed, its cache or engine is closed or shut down, or
// the context given to Subscribe is done (the error then also wraps the
// context's cause, from the moment ctx.Err() is not nil); after
// [Engine.DeleteCache] it also wraps [ErrCacheNotFound]. Next returns
// ctx.Err() when the context given to Next itself is done, and the
// subscription stays open. Leaving a range loop over [Subscription.All]
// closes the subscription. [Subscription.NextBatch] reads every item that is
// ready in one call, and ends as Next does. All and handlers read the same
// way inside, and hand out the items one at a time, each with the checks
// Next makes. Close ends a subscription at
// once, leaving what it has not read unread; [Cache.Shutdown] and
// [Engine.Shutdown] end a cache gracefully: publishes are refused, and every
// subscription and handler first reads what was published before.
//
// Payloads. Publish copies the bytes it is given and keeps no reference to
// them. Every subscriber receives the same copy: the slice from
// [Value.Bytes] must not be modified. Typed topics ([TopicOf]) deliver the
// published value itself to every subscriber, without copying what it points
// to: publish values you will not modify afterwards.
//
// Memory. A topic holds at most RingSize items. The payloads that the Value
// topics of a cache hold are bounded by [WithMaxBytes]; a publish that would
// go over is refused. Typed topics hold RingSize values of their type and
// what those point to.
//
// Concurrency. Engine, Cache, Topic and Handler are safe for concurrent
// use. A Subscription is read by one goroutine at a time; Close may be called
// from any goroutine. A nil context is a programming error, refused with a
// panic as the standard library does.
//
// # Serving clients
//
// A server that offers topics to untrusted clients keeps the engine to
// itself and serves each client through a session of package
// [github.com/ringbus/topics/access]: short-lived signed tokens that grant
// publishing or subscribing on some caches and topics, stamp what a client
// publishes with its identity ([Item.Publisher]) and end its subscriptions
// when they expire. [WithPublishRate] caps how fast any topic accepts
// publishes.
//
// # Building on the engine
//
// A few calls exist for packages that build on the engine rather than for
// applications: [Cache.PublishAs] publishes under a given identity, [EndAt]
// ends a subscription at a given time with a given cause, [NoLossless]
// keeps a client from holding up publishers, and a [Sequencer] given with
// [WithSequencer] numbers a cache's items elsewhere, feeding each topic
// through a [Feed], so that several processes share one order per topic.
// Package access is built on the first three, and the NATS JetStream bridge
// (module github.com/ringbus/topics/natsbridge) on the last.
//
// # Handlers
//
// [Topic.Handle] and [Cache.Handle] run a function for every item of a topic
// on a goroutine owned by the returned [Handler], one item at a time, in
// order. The function may publish and subscribe, to its own topic too. An
// error the function returns is logged and counted ([Handler.Failures]), and
// the handler goes on with the next item, unless it was started with
// [StopOnError]. A handler ends when it is stopped ([Handler.Stop], which
// lets the item in progress finish and waits for it, unless the function
// itself calls it), when its subscription ends, or when the function panics.
// A panic is recovered and ends that handler only: [Handler.Err] then
// returns a [*PanicError] with the value, the stack and the item. A handler
// is a subscription like any other: a slow handler misses items, and sees
// Item.Missed, exactly as a slow reader of Next does. Stop every handler you
// start (or Wait for it after its subscription ended), so that its goroutine
// is gone.
//
// # Statistics
//
// [Subscription.Stats], [Topic.Stats], [Cache.TopicStats], [Cache.Stats]
// and [Engine.Stats] return snapshots of what was published, delivered and
// missed, how far subscribers lag, and how many there are. They take no lock
// that publishing or delivery takes, and do not allocate (except the ones
// that return slices). To serve them at /debug/vars, publish an
// [expvar.Func] that returns them, under a name of your choice (see the
// expvar example): the package itself imports neither expvar nor net/http,
// and registers nothing. Each figure is read atomically, and a
// subscription's Delivered and Missed form a pair it really went through;
// sums over several subscriptions or topics are read one after the other and
// do not describe a single instant. See [TopicStats] and [CacheStats].
//
// # Logging
//
// A cache is silent unless given a [log/slog.Logger] with [WithLogger] (to
// New, for every cache of an engine). It then logs only what an operator
// would want to hear about and could not easily see otherwise:
//
//   - Warn "topics: subscriber is missing items" when a subscription that was
//     keeping up (or is new) reads an item whose Missed is not 0: the start
//     of a loss episode. Later losses in the same episode are not logged.
//   - Info "topics: subscriber caught up" when a subscription in a loss
//     episode reads the newest item of its topic: the end of the episode.
//   - Warn "topics: publisher held back by lossless subscribers" when a
//     publish gives up waiting for Lossless subscriptions ([ErrHeldBack]),
//     once until a publish to the topic succeeds again.
//   - Error "topics: handler failed on an item, and goes on" when a
//     handler's function returns an error, and "topics: handler panicked"
//     and "topics: handler failed" when a handler ends because its function
//     panicked, or returned an error under [StopOnError].
//
// Records carry the attributes cache, topic and page, and, as relevant,
// sequence (of the item read), missed (lost just before it), missed_episode
// (lost in the episode), missed_total (over the subscription's life),
// lossless_behind, error, panic and stack. Nothing allocates on the
// delivery path unless a record is logged.
//
// # How it works
//
// Each topic is a ring of RingSize slots. A publish claims the next
// sequence number with one compare-and-swap, writes its entry (the payload
// and the publisher) into a chunk of entries that the ring reuses, and
// stores the sequence number in its slot. A subscription is a cursor: it
// reads the slot of the sequence it wants, and the number there says
// whether the item is there, not yet published, or overwritten (the reader
// was lapped, and the difference is exactly what it missed). A reader with
// nothing to read parks on the ring, and a publisher wakes parked readers
// only when there are some. A Lossless subscription adds a gate: a cursor
// publishers do not pass. Package internal/ring argues the memory ordering.
//
// # Testing
//
// Package [github.com/ringbus/topics/topicstest] has helpers for testing
// code that uses topics: caches and engines closed when the test ends, and a
// Recorder that collects a topic's items and waits for them with a deadline.
package topics

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// An Engine is a set of named caches, for servers that host many tenants or
// applications in one process. It is safe for concurrent use. Create one with
// New; the zero Engine is not usable.
type Engine struct {
	opts   []Option // defaults for every cache
	optErr error    // the first invalid option given to New

	mu      sync.RWMutex
	caches  map[string]*Cache
	closed  bool
	closing bool // Shutdown has begun: no new caches
}

// New returns an engine. The options are the defaults of every cache it
// creates; an invalid option is reported by CreateCache.
func New(opts ...Option) *Engine {
	e := &Engine{opts: slices.Clone(opts), caches: make(map[string]*Cache)}
	_, e.optErr = buildCacheConfig(e.opts, nil)
	return e
}

var errEngineClosed = &endError{msg: "topics: engine closed"}

// CreateCache creates a cache with the engine's options, overridden by opts.
// It returns an error wrapping ErrCacheExists if the name is taken,
// ErrInvalidName or ErrInvalidOption for bad input, ErrClosed after Close.
func (e *Engine) CreateCache(name string, opts ...Option) (*Cache, error) {
	if err := ValidateCacheName(name); err != nil {
		return nil, err
	}
	if e.optErr != nil {
		return nil, e.optErr
	}
	cfg, err := buildCacheConfig(e.opts, opts)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.closing {
		return nil, errEngineClosed
	}
	if _, ok := e.caches[name]; ok {
		return nil, fmt.Errorf("%w: %q", ErrCacheExists, name)
	}
	c := newCache(name, cfg, e)
	e.caches[name] = c
	return c, nil
}

// Cache returns the cache with that name. It returns an error wrapping
// ErrCacheNotFound if the engine has none of that name, ErrInvalidName if
// the name breaks the naming rules, ErrClosed after Close.
func (e *Engine) Cache(name string) (*Cache, error) {
	if err := ValidateCacheName(name); err != nil {
		return nil, err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return nil, errEngineClosed
	}
	c, ok := e.caches[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrCacheNotFound, name)
	}
	return c, nil
}

// DeleteCache closes the cache and removes it from the engine. Its
// subscriptions end with an error wrapping ErrCacheNotFound (and ErrClosed),
// and so do later calls on the deleted *Cache. The name can be used again at
// once.
//
// It returns an error wrapping ErrCacheNotFound if the engine has no cache
// of that name, ErrInvalidName if the name breaks the naming rules,
// ErrClosed after Close.
func (e *Engine) DeleteCache(name string) error {
	if err := ValidateCacheName(name); err != nil {
		return err
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return errEngineClosed
	}
	c, ok := e.caches[name]
	if ok {
		delete(e.caches, name)
	}
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrCacheNotFound, name)
	}
	c.shutdown(&endError{
		msg:   fmt.Sprintf("topics: cache %q was deleted", name),
		cause: ErrCacheNotFound,
	})
	return nil
}

// ListCaches returns the names of the engine's caches, sorted.
func (e *Engine) ListCaches() []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return slices.Sorted(maps.Keys(e.caches))
}

// Close closes every cache of the engine, ending their subscriptions with an
// error wrapping ErrClosed. Later calls on the engine return ErrClosed. Close
// is idempotent and always returns nil.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	caches := e.caches
	e.caches = nil
	e.mu.Unlock()
	for _, c := range caches {
		c.shutdown(errEngineClosed)
	}
	return nil
}

// Shutdown closes the engine gracefully: it refuses new caches, shuts every
// cache down as Cache.Shutdown does, all at once, and once every
// subscription of every cache has ended, or when ctx is done, closes the
// engine as Close does. It returns nil, or ctx.Err() if ctx was done first.
func (e *Engine) Shutdown(ctx context.Context) error {
	mustContext(ctx)
	e.mu.Lock()
	e.closing = true
	caches := slices.Collect(maps.Values(e.caches))
	e.mu.Unlock()
	var drains []<-chan struct{}
	for _, c := range caches {
		drains = append(drains, c.startShutdown(errEngineShutDown))
	}
	var err error
	for _, d := range drains {
		select {
		case <-d:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			break
		}
	}
	e.Close()
	return err
}

var errEngineShutDown = &endError{msg: "topics: engine shut down"}

// forget removes c from the engine if it is still registered there.
func (e *Engine) forget(c *Cache) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.caches[c.name] == c {
		delete(e.caches, c.name)
	}
}
