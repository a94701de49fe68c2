package topics

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/ringbus/topics/internal/ring"
)

// Defaults of the cache options. Every cache starts from these; options given
// to New replace them for every cache of that engine, and options given to
// CreateCache or NewCache replace them for that cache.
const (
	// DefaultRingSize is how many items each topic keeps.
	DefaultRingSize = 1024
	// DefaultMaxSubscribers is how many subscriptions a cache may have open.
	DefaultMaxSubscribers = 1 << 20
	// DefaultMaxTopics is how many topics a cache may hold at once.
	DefaultMaxTopics = 1 << 16
	// DefaultMaxValueSize is the largest Value payload, in bytes.
	DefaultMaxValueSize = 1 << 20
	// DefaultMaxBytes is the most payload bytes the Value topics of a cache
	// hold at once.
	DefaultMaxBytes = 256 << 20
	// DefaultTopicIdleTimeout is how long a topic with no subscribers and no
	// publishes is kept before it is dropped.
	DefaultTopicIdleTimeout = 5 * time.Minute
)

// An Option configures a cache. Options given to New are the defaults of
// every cache the engine creates; options given to CreateCache or NewCache
// apply to that cache and override the engine's.
//
// An option given a value it does not accept makes CreateCache or NewCache
// return an error wrapping ErrInvalidOption that names the value. (New cannot
// return an error: it keeps the first one and every CreateCache returns it.)
type Option interface {
	apply(*cacheConfig) error
}

// A SubscribeOption configures one subscription.
type SubscribeOption interface {
	applySubscribe(*subscribeConfig) error
}

type cacheConfig struct {
	ringSize       int
	maxSubscribers int
	maxTopics      int
	maxValueSize   int
	maxBytes       int64
	idleTimeout    time.Duration
	publishRate    *rateConfig  // nil: no publish rate limit (ratelimit.go)
	logger         *slog.Logger // nil: silent (see WithLogger, log.go)
	sequencer      Sequencer    // nil: the cache numbers its items (seam.go)
}

// buildCacheConfig starts from the defaults and applies the engine's options
// and then the cache's own.
func buildCacheConfig(engineOpts, cacheOpts []Option) (cacheConfig, error) {
	cfg := cacheConfig{
		ringSize:       DefaultRingSize,
		maxSubscribers: DefaultMaxSubscribers,
		maxTopics:      DefaultMaxTopics,
		maxValueSize:   DefaultMaxValueSize,
		maxBytes:       DefaultMaxBytes,
		idleTimeout:    DefaultTopicIdleTimeout,
	}
	for _, opts := range [][]Option{engineOpts, cacheOpts} {
		for _, o := range opts {
			if o == nil {
				return cfg, fmt.Errorf("%w: nil Option", ErrInvalidOption)
			}
			if err := o.apply(&cfg); err != nil {
				return cfg, err
			}
		}
	}
	return cfg, nil
}

// cacheOption is an option that sets something per cache.
type cacheOption func(*cacheConfig) error

func (f cacheOption) apply(c *cacheConfig) error { return f(c) }

func positive(name string, n int) error {
	if n <= 0 {
		return fmt.Errorf("%w: %s(%d): must be at least 1", ErrInvalidOption, name, n)
	}
	return nil
}

// WithRingSize sets how many items each topic keeps: a subscriber that falls
// further behind than this loses items (and is told how many). n must be a
// power of two between 1 and 1<<24. The default is DefaultRingSize.
//
// A ring costs 8 bytes per slot up front, and holds up to n payloads.
func WithRingSize(n int) Option {
	return cacheOption(func(c *cacheConfig) error {
		if !ring.ValidSize(n) {
			return fmt.Errorf("%w: WithRingSize(%d): must be a power of two between 1 and %d", ErrInvalidOption, n, ring.MaxSize)
		}
		c.ringSize = n
		return nil
	})
}

// WithMaxSubscribers limits the subscriptions open at once in a cache.
// Subscribe beyond it returns a *LimitError. The default is
// DefaultMaxSubscribers.
func WithMaxSubscribers(n int) Option {
	return cacheOption(func(c *cacheConfig) error {
		if err := positive("WithMaxSubscribers", n); err != nil {
			return err
		}
		c.maxSubscribers = n
		return nil
	})
}

// WithMaxTopics limits the topics a cache holds at once. A publish or
// subscribe that would create one more returns a *LimitError. The default is
// DefaultMaxTopics.
func WithMaxTopics(n int) Option {
	return cacheOption(func(c *cacheConfig) error {
		if err := positive("WithMaxTopics", n); err != nil {
			return err
		}
		c.maxTopics = n
		return nil
	})
}

// WithMaxValueSize limits the size in bytes of a Value payload; a larger one
// is refused with ErrValueTooLarge. The default is DefaultMaxValueSize.
// Typed topics other than Topic[Value] are not limited by size.
func WithMaxValueSize(n int) Option {
	return cacheOption(func(c *cacheConfig) error {
		if err := positive("WithMaxValueSize", n); err != nil {
			return err
		}
		c.maxValueSize = n
		return nil
	})
}

// WithMaxBytes limits the payload bytes that the Value topics of a cache
// hold at once: the payloads of the items their rings keep for slow
// subscribers and for ResumeAt. A publish that would take the cache over it
// is refused with a *LimitError (Limit "MaxBytes"), having published
// nothing; as rings move on and overwrite old items, room comes back. n must
// be at least 1; math.MaxInt64 turns the budget off. The default is
// DefaultMaxBytes.
//
// The budget counts what the rings hold; a ring also keeps alive, for
// readers and late publishers, up to a few hundred items beyond its size
// (internal/ring: spare chunks). It costs a Value topic 4 bytes per slot of
// its ring. Typed topics other than Topic[Value] are not counted: what they
// hold is bounded by RingSize items of T, and what those items point to, per
// topic, and by MaxTopics topics.
func WithMaxBytes(n int64) Option {
	return cacheOption(func(c *cacheConfig) error {
		if n <= 0 {
			return fmt.Errorf("%w: WithMaxBytes(%d): must be at least 1", ErrInvalidOption, n)
		}
		c.maxBytes = n
		return nil
	})
}

// WithTopicIdleTimeout sets how long a topic with no subscribers and no
// publishes is kept. After that it is dropped with the items it held; the
// next publish or subscribe creates it afresh, with a new page. A topic is
// dropped between d and 2d after it fell idle. The default is
// DefaultTopicIdleTimeout.
func WithTopicIdleTimeout(d time.Duration) Option {
	return cacheOption(func(c *cacheConfig) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithTopicIdleTimeout(%v): must be positive", ErrInvalidOption, d)
		}
		c.idleTimeout = d
		return nil
	})
}

type subscribeConfig struct {
	lossless       bool
	noLossless     bool // NoLossless: refuse lossless
	resume         bool
	resumePage     uint64
	resumeSequence uint64
	endAt          time.Time // EndAt; zero if none
	endCause       error
	stopOnError    bool // StopOnError
	handler        bool // the options are a Handle's
}

// endError is the error that ends a subscription at its EndAt time.
func (c *subscribeConfig) endError() *endError {
	if c.endCause == nil {
		return &endError{msg: "topics: subscription reached its end time"}
	}
	return &endError{msg: "topics: subscription ended: " + c.endCause.Error(), cause: c.endCause}
}

func buildSubscribeConfig(opts []SubscribeOption) (subscribeConfig, error) {
	if len(opts) == 0 {
		// No options: no config on the heap (the loop below makes it escape,
		// through the interface call).
		return subscribeConfig{}, nil
	}
	cfg := new(subscribeConfig)
	for _, o := range opts {
		if o == nil {
			return *cfg, fmt.Errorf("%w: nil SubscribeOption", ErrInvalidOption)
		}
		if err := o.applySubscribe(cfg); err != nil {
			return *cfg, err
		}
	}
	if cfg.stopOnError && !cfg.handler {
		return *cfg, fmt.Errorf("%w: StopOnError is an option of Handle, not of Subscribe", ErrInvalidOption)
	}
	if cfg.lossless && cfg.noLossless {
		return *cfg, fmt.Errorf("%w: Lossless is not allowed here (NoLossless)", ErrInvalidOption)
	}
	return *cfg, nil
}

type subscribeOption func(*subscribeConfig) error

func (f subscribeOption) applySubscribe(c *subscribeConfig) error { return f(c) }

// ResumeAt makes a subscription start at item sequence of the given page,
// typically the page and sequence after the last item a client saw before it
// lost its connection:
//
//   - if the page is the topic's current page and the item is still held, the
//     subscription starts there;
//   - if the item is older than anything held, it starts at the oldest held
//     item, whose Missed says how many were lost in between;
//   - if the page is not the topic's current page (the topic was dropped and
//     created again, or the page is unknown), it starts at the current page's
//     oldest held item, whose Missed counts the items of that page no longer
//     held;
//   - if the item is newer than the newest one published, it starts after the
//     newest, like a subscription without ResumeAt.
//
// Sequence 0 is taken as 1.
func ResumeAt(page, sequence uint64) SubscribeOption {
	return subscribeOption(func(c *subscribeConfig) error {
		c.resume, c.resumePage, c.resumeSequence = true, page, max(sequence, 1)
		return nil
	})
}

// Lossless makes a subscription lossless: while it is open, no publisher
// overwrites an item it has not read, and it never reports a loss (an item
// with Missed > 0): it delivers, or it ends. A publish that would have to
// overwrite an unread item waits until the subscription reads on, or until
// the subscription ends, or until the publish's context is done: it then
// returns an error wrapping ErrHeldBack and ctx.Err(), having published
// nothing. Ordinary subscriptions of the same topic keep losing items when
// they fall behind and never slow anyone down.
//
// Close a lossless subscription you stop reading. One that is dropped
// without Close stops holding up publishers once the garbage collector finds
// it unreachable (and its Subscribe context, if it has one, no longer refers
// to it); its figures are lost with it.
//
// Of a topic sequenced elsewhere (Sequencer), a lossless subscription loses
// nothing in this process, and reports the gaps the sequencer's feed had.
//
// A lossless subscription costs a cursor, as any subscription does; what it
// buys is paid by publishers, who wait for the slowest lossless reader once
// it is a whole ring behind. Use it for in-process event buses that cannot
// lose an event, with a ring large enough for bursts.
//
// The rule that keeps it from deadlocking: the goroutine that reads a
// lossless subscription must not publish to the same topic with a context
// that never ends. With the ring full, that publish would wait for the very
// reader that is waiting for it to return. Publish from another goroutine,
// or give the publish a context with a deadline (it then fails with
// context.DeadlineExceeded instead of hanging), or use a ring larger than
// anything the reader can fall behind by.
func Lossless() SubscribeOption {
	return subscribeOption(func(c *subscribeConfig) error {
		c.lossless = true
		return nil
	})
}
