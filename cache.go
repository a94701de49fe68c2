package topics

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringbus/topics/internal/table"
)

// A Cache is a namespace of topics. It is safe for concurrent use. Create one
// with NewCache, or with Engine.CreateCache to keep it in an engine; the zero
// Cache is not usable.
//
// Publish and Subscribe on a Cache use a topic as a Topic[Value]: they reach
// the same topic as TopicOf[Value] with the same name.
type Cache struct {
	name   string
	cfg    cacheConfig
	engine *Engine // nil for a standalone cache

	// topics maps a name to its *instance[T]. Reads are lock-free; stores and
	// deletes happen under mu.
	topics  table.Table[anyInstance]
	end     atomic.Pointer[endError] // set once, when the cache closes
	closing atomic.Pointer[endError] // set once, by Shutdown or the end: no more publishes
	nsubs   atomic.Int64             // open subscriptions
	bytes   atomic.Int64             // payload bytes its Value topics hold (WithMaxBytes)

	mu      sync.Mutex     // guards what follows, and writes to topics
	sweeper *time.Timer    // drops idle topics; armed while any topic has no subscriber
	armed   bool           // sweeper is scheduled
	sweeps  sync.WaitGroup // one count per scheduled or running sweep
	dropped droppedStats   // totals of the topics dropped so far (stats.go)
	drained chan struct{}  // made by Shutdown, closed when no subscription is left
}

// NewCache returns a standalone cache, not held by any engine. Close it when
// done. It returns an error wrapping ErrInvalidName or ErrInvalidOption for
// bad input.
func NewCache(name string, opts ...Option) (*Cache, error) {
	if err := ValidateCacheName(name); err != nil {
		return nil, err
	}
	cfg, err := buildCacheConfig(nil, opts)
	if err != nil {
		return nil, err
	}
	return newCache(name, cfg, nil), nil
}

func newCache(name string, cfg cacheConfig, e *Engine) *Cache {
	return &Cache{name: name, cfg: cfg, engine: e}
}

// Name returns the cache's name.
func (c *Cache) Name() string { return c.name }

// Publish publishes a copy of value to the topic as a binary Value, creating
// the topic if needed. It succeeds when there is no subscriber, and never
// waits for one, except for a Lossless subscription that has not read the
// item Publish would overwrite. Publish keeps no reference to value once it
// returns.
//
// It returns an error wrapping ErrValueTooLarge, ErrInvalidName,
// ErrTopicType, ErrLimitExceeded (too many topics, or the publish rate: see
// WithPublishRate) or ErrClosed; or ctx.Err() if ctx is done before it could
// publish. A publish that returns an error has published nothing.
func (c *Cache) Publish(ctx context.Context, topic string, value []byte) error {
	mustContext(ctx)
	t, err := c.valueTopic(ctx, topic, len(value))
	if err != nil {
		return err
	}
	return t.publish(ctx, nil, BytesValue(value))
}

// PublishString is Publish for a text payload.
func (c *Cache) PublishString(ctx context.Context, topic string, value string) error {
	mustContext(ctx)
	t, err := c.valueTopic(ctx, topic, len(value))
	if err != nil {
		return err
	}
	return t.publish(ctx, nil, TextValue(value))
}

// valueTopic makes every check of a publish of size bytes to the named
// Value topic, and returns the topic.
func (c *Cache) valueTopic(ctx context.Context, name string, size int) (*instance[Value], error) {
	if size > c.cfg.maxValueSize {
		return nil, c.tooLarge(name, size)
	}
	if err := c.usable(ctx); err != nil {
		return nil, err
	}
	// Looked up by name every time: remembering the last topic published
	// to was measured, and slows down publishers spread over several topics
	// (BENCHMARKS.md). A Topic handle skips the lookup.
	t, err := acquireTopic[Value](c, name)
	if err != nil {
		return nil, err
	}
	if err := t.admitBytes(size); err != nil {
		return nil, err
	}
	if err := t.admitPublish(); err != nil {
		return nil, err
	}
	return t, nil
}

// Subscribe subscribes to the topic, creating it if needed. The subscription
// starts after the newest item, or where ResumeAt says. It ends when ctx is
// done, when it is closed, or when the cache closes.
//
// It returns an error wrapping ErrInvalidName, ErrInvalidOption,
// ErrTopicType, ErrLimitExceeded (too many subscribers or topics) or
// ErrClosed; or ctx.Err() if ctx is done. A refused Subscribe leaves nothing
// behind.
func (c *Cache) Subscribe(ctx context.Context, topic string, opts ...SubscribeOption) (*Subscription[Value], error) {
	mustContext(ctx)
	return subscribe[Value](ctx, c, topic, opts)
}

// Close closes the cache: its subscriptions end with an error wrapping
// ErrClosed, and so do later calls on it. Items published but not yet read
// are left unread (see SubscriptionStats.Unread); Shutdown lets them be read
// first. A cache of an engine is also removed from the engine. Close is
// idempotent and always returns nil.
func (c *Cache) Close() error {
	if c.engine != nil {
		c.engine.forget(c)
	}
	c.shutdown(&endError{msg: fmt.Sprintf("topics: cache %q closed", c.name)})
	return nil
}

// Shutdown closes the cache gracefully. It refuses new publishes and
// subscriptions at once, with an error wrapping ErrClosed; every
// subscription goes on until it has read what was published before (a
// handler until its function has handled it), and then ends with an error
// wrapping ErrClosed. Once no subscription is left, or when ctx is done,
// Shutdown closes the cache, ending what is left as Close does, and returns
// nil or ctx.Err().
//
// Every item whose publish returned before Shutdown was called reaches every
// subscription that keeps reading (unless it had already lost it by falling
// behind); a publish that runs while Shutdown starts may or may not. A
// subscription that is not read keeps Shutdown waiting until ctx is done.
// Shutdown is safe to call more than once and together with Close.
func (c *Cache) Shutdown(ctx context.Context) error {
	mustContext(ctx)
	drained := c.startShutdown(&endError{msg: fmt.Sprintf("topics: cache %q shut down", c.name)})
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.Close()
	return err
}

// startShutdown refuses publishes and subscriptions with e (unless the
// cache is closing already), wakes every parked reader so that it sees the
// shutdown, and returns a channel closed once no subscription is left.
func (c *Cache) startShutdown(e *endError) <-chan struct{} {
	c.mu.Lock()
	c.closing.CompareAndSwap(nil, e)
	if c.drained == nil {
		c.drained = make(chan struct{})
	}
	drained := c.drained
	c.mu.Unlock()
	c.topics.Range(func(_ string, t anyInstance) bool {
		t.wake()
		return true
	})
	c.checkDrained()
	return drained
}

// checkDrained closes drained once a shut-down cache has no subscription.
func (c *Cache) checkDrained() {
	if c.nsubs.Load() != 0 || c.closing.Load() == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drained != nil && c.nsubs.Load() == 0 {
		select {
		case <-c.drained:
		default:
			close(c.drained)
		}
	}
}

// usable returns the error that stops an operation on the cache before it
// starts: the context is done, or the cache is closed or shutting down.
func (c *Cache) usable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if e := c.closing.Load(); e != nil {
		return e
	}
	return nil
}

func (c *Cache) tooLarge(topic string, n int) error {
	return fmt.Errorf("%w: %d bytes for topic %s of cache %q; the limit is %d", ErrValueTooLarge, n, quoteName(topic), c.name, c.cfg.maxValueSize)
}

// shutdown ends the cache with e. Only the first call does anything.
func (c *Cache) shutdown(e *endError) {
	c.mu.Lock()
	if c.end.Load() != nil {
		c.mu.Unlock()
		return
	}
	c.closing.CompareAndSwap(nil, e)
	c.end.Store(e)
	if c.armed && c.sweeper.Stop() {
		c.armed = false
		c.sweeps.Done()
	}
	c.mu.Unlock()
	c.sweeps.Wait() // a sweep that was already running sees end and returns
	// No topic can be created from here on (createTopic checks end under mu),
	// so this reaches every topic. Parked readers wake, see end and return it;
	// the ring's park handshake guarantees none sleeps through it.
	var fed []*Feed
	c.topics.Range(func(_ string, t anyInstance) bool {
		if f := t.end(e); f != nil {
			fed = append(fed, f)
		}
		return true
	})
	c.retireSubscriptions()
	for _, f := range fed {
		c.cfg.sequencer.Close(f)
	}
}

// reserveSubscriber counts one more subscription, within the limit.
func (c *Cache) reserveSubscriber() error {
	for {
		n := c.nsubs.Load()
		if n >= int64(c.cfg.maxSubscribers) {
			return &LimitError{Cache: c.name, Limit: "MaxSubscribers", Max: c.cfg.maxSubscribers}
		}
		if c.nsubs.CompareAndSwap(n, n+1) {
			return nil
		}
	}
}

// leave undoes reserveSubscriber for a subscription of the instance and,
// when the instance has lost its last subscriber, lets the sweeper consider
// it.
func (c *Cache) leave(m *instanceMeta) {
	if c.nsubs.Add(-1) == 0 {
		c.checkDrained()
	}
	if m.subs.Add(-1) == 0 {
		c.mu.Lock()
		m.idleSeen = false
		c.armSweeper()
		c.mu.Unlock()
	}
}

// armSweeper schedules a sweep for idle topics if none is scheduled. c.mu
// must be held.
func (c *Cache) armSweeper() {
	if c.armed || c.end.Load() != nil {
		return
	}
	c.armed = true
	c.sweeps.Add(1)
	if c.sweeper == nil {
		c.sweeper = time.AfterFunc(c.cfg.idleTimeout, c.sweep)
	} else {
		c.sweeper.Reset(c.cfg.idleTimeout)
	}
}

// sweep drops the topics that had no subscribers and no publishes since the
// previous sweep, and marks the other topics without subscribers for the
// next. It rearms itself while any such topic remains, so an idle cache, or
// one whose topics all have subscribers, has no timer running.
func (c *Cache) sweep() {
	defer c.sweeps.Done()
	c.mu.Lock()
	c.armed = false
	if c.end.Load() != nil {
		c.mu.Unlock()
		return
	}
	waiting := 0
	var fed []*Feed
	c.topics.Range(func(name string, t anyInstance) bool {
		m := t.meta()
		if m.subs.Load() != 0 {
			m.idleSeen = false
			return true
		}
		mark := t.activity()
		if m.idleSeen && m.idleMark == mark && m.subs.CompareAndSwap(0, dropped) {
			c.retireTopic(t)
			c.topics.Delete(name)
			c.bytes.Add(-m.heldBytes())
			if f := t.end(errDropped); f != nil {
				fed = append(fed, f)
			}
			return true
		}
		m.idleSeen, m.idleMark = true, mark
		waiting++
		return true
	})
	if waiting > 0 {
		c.armSweeper()
	}
	c.mu.Unlock()
	for _, f := range fed {
		c.cfg.sequencer.Close(f)
	}
}

// errDropped ends what waits on an instance the sweeper dropped.
var errDropped = &endError{msg: "topics: topic dropped as idle"}

// forget removes an instance that could not be opened from the cache, if it
// is still the one registered under its name.
func (c *Cache) forget(t anyInstance) {
	m := t.meta()
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.topics.Load(m.name); ok && cur == t {
		c.topics.Delete(m.name)
	}
}

// acquireTopic returns the topic of that name, creating it if needed.
func acquireTopic[T any](c *Cache, name string) (*instance[T], error) {
	if v, ok := c.topics.Load(name); ok {
		if t, ok := v.(*instance[T]); ok {
			return t, nil
		}
		return nil, topicTypeError[T](c, name, v)
	}
	return createTopic[T](c, name, false)
}

// acquireSubscribed is acquireTopic for a new subscriber: the topic it
// returns has counted the subscriber in.
func acquireSubscribed[T any](c *Cache, name string) (*instance[T], error) {
	if v, ok := c.topics.Load(name); ok {
		t, ok := v.(*instance[T])
		if !ok {
			return nil, topicTypeError[T](c, name, v)
		}
		if t.addSubscriber() {
			return t, nil
		}
		// Dropped by the sweeper just now: under the lock, it is gone.
	}
	// Created with its subscriber counted in, so the sweeper never sees it
	// without one and is not armed for it.
	return createTopic[T](c, name, true)
}

// createTopic creates the topic, or returns it if it exists by now. With
// subscribe, it counts a subscriber in before the sweeper can look at it.
func createTopic[T any](c *Cache, name string, subscribe bool) (*instance[T], error) {
	if err := ValidateTopicName(name); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.end.Load(); e != nil {
		return nil, e
	}
	if v, ok := c.topics.Load(name); ok {
		t, ok := v.(*instance[T])
		if !ok {
			return nil, topicTypeError[T](c, name, v)
		}
		// The sweeper drops topics under c.mu and deletes them at once, so
		// this one is live and addSubscriber succeeds.
		if subscribe && !t.addSubscriber() {
			panic("topics: internal error: dropped topic still registered")
		}
		return t, nil
	}
	if c.topics.Len() >= c.cfg.maxTopics {
		return nil, &LimitError{Cache: c.name, Limit: "MaxTopics", Max: c.cfg.maxTopics}
	}
	t := &instance[T]{instanceMeta: instanceMeta{cache: c, name: name, limiter: newRateLimiter(c.cfg.publishRate)}}
	if s := c.cfg.sequencer; s != nil {
		v, ok := any(t).(*instance[Value])
		if !ok {
			return nil, c.notValue(name, reflect.TypeFor[T]())
		}
		t.feed = newFeed(v, s)
	} else {
		t.page = newPage()
	}
	t.ring.Init(c.cfg.ringSize)
	_, isValue := any(t).(*instance[Value])
	if isValue && c.cfg.maxBytes < math.MaxInt64 {
		t.sizes = make([]atomic.Uint32, c.cfg.ringSize)
	}
	t.plain = !isValue && t.limiter == nil
	if subscribe {
		t.subs.Store(1)
	} else {
		c.armSweeper()
	}
	c.topics.Store(name, t)
	return t, nil
}

// notValue refuses a topic of type typ on a sequenced cache.
func (c *Cache) notValue(name string, typ reflect.Type) error {
	return fmt.Errorf("%w: topic %s of cache %q would carry %v: %w", ErrTopicType, quoteName(name), c.name, typ, errNotValue)
}

// topicTypeError refuses a use as a Topic[T] of topic t, which carries
// another type.
func topicTypeError[T any](c *Cache, name string, t anyInstance) error {
	has, want := typeNames(t.elemType(), reflect.TypeFor[T]())
	return fmt.Errorf("%w: topic %s of cache %q carries %s, not %s", ErrTopicType, quoteName(name), c.name, has, want)
}
