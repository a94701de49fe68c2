package topics

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// MaxPublishRate is the highest rate WithPublishRate accepts, in publishes
// per second: one per nanosecond, the resolution of the limiter's clock.
const MaxPublishRate = 1e9

// WithPublishRate limits how fast each topic of a cache accepts publishes:
// perSecond publishes per second on average, with bursts of up to burst
// publishes at once. It is a token bucket: a topic starts with burst tokens,
// a publish takes one, and tokens come back at perSecond per second up to
// burst. The limit is per topic and shared by every publisher of the topic
// (Cache.Publish, Topic.Publish and Session.Publish alike).
//
// A publish over the limit is refused: it publishes nothing, takes no
// sequence number, and returns a *LimitError (wrapping ErrLimitExceeded)
// with Limit "PublishRate", Max the burst, Rate perSecond, the Topic, and
// RetryAfter, the wait until a publish would be accepted (what an HTTP
// server puts in a Retry-After header with its 429). A publish that is
// admitted and then fails (its context ends while it waits for a Lossless
// subscription) gives its token back.
//
// There is no rate limit by default. perSecond must be positive and at most
// MaxPublishRate, or +Inf for no limit (which lets one cache opt out of an
// engine-wide default); burst must be at least 1; burst publishes at the
// given rate must take less than about 146 years. Otherwise CreateCache and
// NewCache return an error wrapping ErrInvalidOption.
//
// A topic's bucket lives as long as the topic: a topic dropped for idleness
// and created again starts with a full bucket. The limiter costs one clock
// reading and one compare-and-swap per publish, and nothing when off.
func WithPublishRate(perSecond float64, burst int) Option {
	return cacheOption(func(c *cacheConfig) error {
		bad := func(why string) error {
			return fmt.Errorf("%w: WithPublishRate(%g, %d): %s", ErrInvalidOption, perSecond, burst, why)
		}
		switch {
		case math.IsNaN(perSecond) || perSecond <= 0:
			return bad("the rate must be positive")
		case perSecond > MaxPublishRate && !math.IsInf(perSecond, 1):
			return bad(fmt.Sprintf("the rate must be at most %g per second, or +Inf for no limit", float64(MaxPublishRate)))
		case burst < 1:
			return bad("the burst must be at least 1")
		case math.IsInf(perSecond, 1):
			c.publishRate = nil
			return nil
		}
		interval := max(math.Round(float64(time.Second)/perSecond), 1)
		if interval*float64(burst) >= 1<<62 {
			return bad("a burst at that rate lasts too long")
		}
		c.publishRate = &rateConfig{
			perSecond: perSecond,
			burst:     burst,
			interval:  int64(interval),
			tolerance: int64(interval) * int64(burst-1),
		}
		return nil
	})
}

// rateConfig is a cache's publish rate, as WithPublishRate set it.
type rateConfig struct {
	perSecond float64
	burst     int
	interval  int64 // nanoseconds between publishes at the sustained rate
	tolerance int64 // how far ahead of the clock the schedule may run: (burst-1)*interval
}

// A rateLimiter is one topic's token bucket.
//
// It is kept in the form of the generic cell rate algorithm's "virtual
// scheduling" (ITU-T I.371; see "Generic cell rate algorithm" on Wikipedia):
// instead of a token count and a refill time, which would take two words and
// a lock to update together, it keeps one number, tat, the time at which the
// bucket will be full again ("theoretical arrival time"). A publish at time
// now is accepted if tat - now <= tolerance, that is if the bucket holds at
// least one token, and moves tat to max(tat, now) + interval. Both forms
// accept exactly the same publishes; this one is a single atomic word, so a
// publish is one load and one compare-and-swap, and a refused publish writes
// nothing at all.
type rateLimiter struct {
	tat   atomic.Int64 // nanoseconds after epoch
	epoch time.Time    // carries a monotonic clock reading
	cfg   *rateConfig
}

// newRateLimiter returns a topic's limiter, or nil when cfg is nil.
func newRateLimiter(cfg *rateConfig) *rateLimiter {
	if cfg == nil {
		return nil
	}
	return &rateLimiter{epoch: time.Now(), cfg: cfg}
}

// admit takes a token for one publish to the topic, or returns the
// *LimitError that refuses it. Safe for concurrent use.
func (l *rateLimiter) admit(m *instanceMeta) error {
	now := int64(time.Since(l.epoch))
	for {
		tat := l.tat.Load()
		start := max(tat, now)
		if ahead := start - now; ahead > l.cfg.tolerance {
			return &LimitError{
				Cache:      m.cache.name,
				Limit:      "PublishRate",
				Max:        l.cfg.burst,
				Topic:      m.name,
				Rate:       l.cfg.perSecond,
				RetryAfter: time.Duration(ahead - l.cfg.tolerance),
			}
		}
		if l.tat.CompareAndSwap(tat, start+l.cfg.interval) {
			return nil
		}
	}
}

// refund gives back the token of an admitted publish that then failed (its
// context ended while it waited for a Lossless reader), so that only
// publishes that happen count against the rate. Moving tat back by one
// interval is exactly one token more in the bucket; the bucket cannot
// overfill, since admit measures from max(tat, now).
func (l *rateLimiter) refund() { l.tat.Add(-l.cfg.interval) }

// admitPublish checks the topic's publish rate, if it has one. It is small
// enough to be inlined: with no limit it costs a nil check.
func (m *instanceMeta) admitPublish() error {
	if m.limiter == nil {
		return nil
	}
	return m.limiter.admit(m)
}
