package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ringbus/topics"
)

// A Bridge shares the topics of caches among processes through NATS
// JetStream: it is the topics.Sequencer of those caches. Create one per
// NATS connection with New, make engines or caches with NewEngine and
// NewCache (or give Sequencer to topics.WithSequencer), and close it
// after them.
//
// A Bridge is safe for concurrent use. The zero Bridge is not usable.
type Bridge struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	cfg config

	mu     sync.RWMutex
	topics map[topicKey]*topic    // by cache and topic name
	feeds  map[*topics.Feed]*feed // the open feeds; under mu

	closed atomic.Bool
	ctx    context.Context // ends with Close
	stop   context.CancelFunc
	wg     sync.WaitGroup
	status chan nats.Status // connection events, for the feeds
	once   sync.Once
}

type topicKey struct{ cache, name string }

// New returns a bridge over the NATS connection nc, which must reach a
// JetStream-enabled server or cluster. The caller keeps nc, and closes it
// after the bridge.
//
// New registers a status listener on nc (nc.StatusChanged) to learn of
// reconnections; it changes none of nc's handlers.
func New(nc *nats.Conn, opts ...Option) (*Bridge, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: natsbridge.New: nil connection", topics.ErrInvalidOption)
	}
	cfg, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsbridge: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	b := &Bridge{
		nc:     nc,
		js:     js,
		cfg:    cfg,
		topics: make(map[topicKey]*topic),
		feeds:  make(map[*topics.Feed]*feed),
		ctx:    ctx,
		stop:   stop,
		status: nc.StatusChanged(nats.CONNECTED),
	}
	b.wg.Add(2)
	go b.watchStatus()
	go b.janitor()
	return b, nil
}

// NewEngine returns an engine whose caches share their topics through b:
// topics.New with topics.WithSequencer and topics.WithRingSize of the
// bridge's window, then opts.
func (b *Bridge) NewEngine(opts ...topics.Option) *topics.Engine {
	return topics.New(b.cacheOptions(opts)...)
}

// NewCache returns a standalone cache whose topics are shared through b, as
// NewEngine's caches are.
func (b *Bridge) NewCache(name string, opts ...topics.Option) (*topics.Cache, error) {
	return topics.NewCache(name, b.cacheOptions(opts)...)
}

func (b *Bridge) cacheOptions(opts []topics.Option) []topics.Option {
	return append([]topics.Option{topics.WithRingSize(b.cfg.window), topics.WithSequencer(b.Sequencer())}, opts...)
}

// Sequencer returns the bridge as a topics.Sequencer, for
// topics.WithSequencer. Caches given it share their topics with every cache
// of the same name, in every process, whose bridge uses the same prefix.
func (b *Bridge) Sequencer() topics.Sequencer { return sequencer{b} }

// Close stops the bridge: the topics it feeds get no more items, and
// publishing through it fails with an error wrapping topics.ErrClosed. It
// waits for the bridge's goroutines to end. Close the engines and caches
// that use the bridge first. Close does not close the NATS connection. It is
// idempotent and always returns nil.
func (b *Bridge) Close() error {
	b.once.Do(func() {
		b.closed.Store(true)
		b.stop()
		b.mu.Lock()
		for _, fd := range b.feeds {
			fd.cancel()
		}
		b.mu.Unlock()
		b.nc.RemoveStatusListener(b.status)
		b.wg.Wait()
	})
	return nil
}

// errClosed is the error of a use of a closed bridge.
func errClosed() error {
	return fmt.Errorf("%w: natsbridge: the bridge is closed", topics.ErrClosed)
}

// topic returns what the bridge knows of a topic, making it known.
func (b *Bridge) topic(cache, name string) *topic {
	k := topicKey{cache, name}
	b.mu.RLock()
	t := b.topics[k]
	b.mu.RUnlock()
	if t != nil {
		return t
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if t = b.topics[k]; t == nil {
		t = newTopic(b.cfg.prefix, cache, name)
		b.topics[k] = t
	}
	return t
}

// watchStatus tells every feed to catch up when the connection is back.
func (b *Bridge) watchStatus() {
	defer b.wg.Done()
	for {
		select {
		case <-b.ctx.Done():
			return
		case _, ok := <-b.status:
			if !ok {
				return
			}
			b.mu.RLock()
			for _, fd := range b.feeds {
				fd.catchUpSoon()
			}
			b.mu.RUnlock()
		}
	}
}

// sequencer is the bridge as a topics.Sequencer. A type of its own keeps the
// seam's methods off the Bridge, whose Close is the bridge's.
type sequencer struct{ b *Bridge }

func (s sequencer) Publish(ctx context.Context, cache, topic, publisher string, v topics.Value) error {
	return s.b.publish(ctx, cache, topic, publisher, v)
}

func (s sequencer) Open(f *topics.Feed) { s.b.open(f) }

func (s sequencer) Close(f *topics.Feed) { s.b.closeFeed(f) }

// nowMicro is the wall clock in microseconds, as pages are.
func nowMicro() uint64 { return uint64(time.Now().UnixMicro()) }

// isTimeout reports whether err is a request that got no answer in time.
func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}
