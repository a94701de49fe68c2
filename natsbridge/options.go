package natsbridge

import (
	"fmt"
	"log/slog"
	"math/bits"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ringbus/topics"
)

// Defaults of the options.
const (
	// DefaultPrefix starts the names of the bridge's streams and subjects.
	DefaultPrefix = "topics"
	// DefaultWindow is how many items the stream of a topic keeps: the
	// same as topics.DefaultRingSize.
	DefaultWindow = topics.DefaultRingSize
	// DefaultReplicas is how many servers hold each stream.
	DefaultReplicas = 1
	// DefaultTimeout bounds each Publish and the opening of each topic.
	DefaultTimeout = 5 * time.Second
	// DefaultIdleTimeout is how long a stream is kept with no publish and
	// no process subscribed to it.
	DefaultIdleTimeout = 10 * time.Minute
)

// An Option configures a Bridge.
type Option interface {
	apply(*config) error
}

type config struct {
	prefix   string
	window   int
	replicas int
	storage  jetstream.StorageType
	timeout  time.Duration
	idle     time.Duration
	logger   *slog.Logger
}

func buildConfig(opts []Option) (config, error) {
	cfg := config{
		prefix:   DefaultPrefix,
		window:   DefaultWindow,
		replicas: DefaultReplicas,
		storage:  jetstream.MemoryStorage,
		timeout:  DefaultTimeout,
		idle:     DefaultIdleTimeout,
	}
	for _, o := range opts {
		if o == nil {
			return cfg, fmt.Errorf("%w: nil natsbridge.Option", topics.ErrInvalidOption)
		}
		if err := o.apply(&cfg); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

type option func(*config) error

func (f option) apply(c *config) error { return f(c) }

// WithPrefix sets how the bridge's JetStream streams and subjects are named:
// stream prefix_<id> with subjects prefix.i.<id>, prefix.m.<id>.<page> and
// (republished) prefix.o.<id>, where <id> is derived from the cache and topic
// names. Every process that shares topics must use the same prefix; processes
// with different prefixes share nothing. The prefix is 1 to 32 characters of
// A-Z a-z 0-9 - _. The default is DefaultPrefix.
func WithPrefix(p string) Option {
	return option(func(c *config) error {
		if len(p) == 0 || len(p) > 32 {
			return fmt.Errorf("%w: natsbridge.WithPrefix(%q): 1 to 32 characters", topics.ErrInvalidOption, p)
		}
		for _, r := range p {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("%w: natsbridge.WithPrefix(%q): only A-Z a-z 0-9 - _", topics.ErrInvalidOption, p)
			}
		}
		c.prefix = p
		return nil
	})
}

// WithWindow sets how many items the stream of each topic retains: what
// ResumeAt can reach on a process that opens the topic later, and what a
// process that lost items can fetch again. It is also the ring size of the
// caches that NewEngine and NewCache make, so that a ring holds the whole
// window; give the same n to topics.WithRingSize for caches made otherwise.
// n is a power of two between 1 and 1<<20. The default is DefaultWindow.
//
// Every process should use the same window: the first process to create a
// topic's stream sets it, and the others use the stream as it is.
func WithWindow(n int) Option {
	return option(func(c *config) error {
		if n < 1 || n > 1<<20 || bits.OnesCount(uint(n)) != 1 {
			return fmt.Errorf("%w: natsbridge.WithWindow(%d): a power of two between 1 and %d", topics.ErrInvalidOption, n, 1<<20)
		}
		c.window = n
		return nil
	})
}

// WithReplicas sets how many JetStream servers hold each topic's stream: 1
// (the default), or 3 or 5. With one, a topic whose server dies goes on with
// a new page; with more, JetStream keeps the topic and its page through the
// loss of a minority of them, at the cost of replicating every item.
func WithReplicas(n int) Option {
	return option(func(c *config) error {
		if n != 1 && n != 3 && n != 5 {
			return fmt.Errorf("%w: natsbridge.WithReplicas(%d): 1, 3 or 5", topics.ErrInvalidOption, n)
		}
		c.replicas = n
		return nil
	})
}

// WithFileStorage keeps the topics' streams on disk rather than in memory.
// A server that restarts then keeps the items it held, and their page.
func WithFileStorage() Option {
	return option(func(c *config) error {
		c.storage = jetstream.FileStorage
		return nil
	})
}

// WithTimeout bounds every Publish, and the opening of a topic by its first
// subscription in this process, however long their contexts are: when NATS
// does not answer within d, they fail with ErrUnavailable. The default is
// DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return option(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: natsbridge.WithTimeout(%v): must be positive", topics.ErrInvalidOption, d)
		}
		c.timeout = d
		return nil
	})
}

// WithIdleTimeout sets when a topic's stream is deleted from JetStream: once
// nothing was published to it for d and no process subscribes to it. Every
// bridge looks for such streams every d/2 or so. The next use of the topic
// creates it again, with a new page, as a topic dropped for idleness in one
// process is. The default is DefaultIdleTimeout.
func WithIdleTimeout(d time.Duration) Option {
	return option(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: natsbridge.WithIdleTimeout(%v): must be positive", topics.ErrInvalidOption, d)
		}
		c.idle = d
		return nil
	})
}

// WithLogger makes the bridge log what happens to its topics beyond the
// ordinary: a stream created again with a new page after its server was
// lost or restarted, items lost to a gap, idle streams deleted. By default
// the bridge logs nothing.
func WithLogger(l *slog.Logger) Option {
	return option(func(c *config) error {
		c.logger = l
		return nil
	})
}
