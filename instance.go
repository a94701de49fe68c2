package topics

import (
	"context"
	"reflect"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/ringbus/topics/internal/ring"
)

// An instance is a topic as it is between its creation and its end: its
// ring, its page and its figures. A topic dropped for idleness and used
// again is a new instance with a new page; names and Topic handles find the
// current instance through the cache's table.
type instance[T any] struct {
	ring ring.Ring[T]
	instanceMeta
}

// instanceMeta is the part of an instance that does not depend on its type.
type instanceMeta struct {
	cache *Cache
	name  string
	page  uint64       // fixed for life; 0 when fed, whose pages come from the feed
	subs  atomic.Int64 // open subscriptions, or dropped

	limiter *rateLimiter // the publish rate; nil when unlimited
	feed    *Feed        // set when the cache is sequenced elsewhere (seam.go)

	// sent counts publishes handed to the sequencer. They do not move the
	// ring, which only the feed writes, so the sweeper watches this instead.
	sent atomic.Uint64

	// Under cache.mu: the sweeper's marks.
	idleSeen bool   // no subscriber at the last sweep
	idleMark uint64 // activity at the last sweep

	stats topicStats // open subscriptions and totals (stats.go)
}

// dropped is the subscriber count of an instance the sweeper has dropped: no
// subscriber can join it any more.
const dropped = -1

// addSubscriber counts a subscriber in, unless the instance was dropped.
func (m *instanceMeta) addSubscriber() bool {
	for {
		n := m.subs.Load()
		if n == dropped {
			return false
		}
		if m.subs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// currentPage returns the page of the instance: its own, or for a fed one
// the page the feed is at (0 before it is ready).
func (m *instanceMeta) currentPage() uint64 {
	if m.feed != nil {
		if s := m.feed.lastSegment(); s != nil {
			return s.page
		}
	}
	return m.page
}

// published returns the sequence of the newest item, given the ring's head.
func (m *instanceMeta) published(head uint64) uint64 {
	if m.feed != nil {
		if s := m.feed.lastSegment(); s != nil {
			return head - s.base
		}
		return 0
	}
	return head
}

// anyInstance is what the cache needs of an instance whatever its type.
type anyInstance interface {
	meta() *instanceMeta
	head() uint64
	activity() uint64
	end(cause *endError) *Feed
	elemType() reflect.Type
}

func (t *instance[T]) meta() *instanceMeta    { return &t.instanceMeta }
func (t *instance[T]) head() uint64           { return t.ring.Head() }
func (t *instance[T]) elemType() reflect.Type { return reflect.TypeFor[T]() }

// activity is a number that changes whenever the topic is published to in
// this process.
func (t *instance[T]) activity() uint64 {
	if t.feed != nil {
		return t.sent.Load()
	}
	return t.ring.Head()
}

// end is called once the instance has ended, with its cache or dropped as
// idle: it wakes every parked reader, so that each sees the end, and lets go
// every publisher waiting for a lossless reader. It returns the instance's
// feed if the Sequencer must be told (Sequencer.Close); the caller tells it,
// holding no lock.
func (t *instance[T]) end(cause *endError) *Feed {
	t.ring.RemoveGates()
	t.ring.WakeAll()
	if f := t.feed; f != nil && f.end(cause) {
		return f
	}
	return nil
}

// publish publishes v as publisher to an instance whose checks, admitPublish
// included, have passed, and gives the rate token back if it fails.
func (t *instance[T]) publish(ctx context.Context, publisher *string, v T) error {
	var err error
	if f := t.feed; f != nil {
		// Only Value topics are fed, so T is Value here.
		err = f.send(ctx, publisher, *(*Value)(unsafe.Pointer(&v)))
	} else {
		_, err = t.ring.Publish(ctx, publisher, v)
	}
	if err != nil && t.limiter != nil {
		t.limiter.refund()
	}
	return err
}

// MaxPage is the greatest page number. Pages fit in 53 bits so that clients
// that read numbers as IEEE 754 doubles, such as JavaScript, send back
// exactly the page they were given.
const MaxPage = 1<<53 - 1

// lastPage is the page handed out last, in this process.
var lastPage atomic.Uint64

// newPage returns the page of a new instance: the wall clock in
// microseconds, forced to grow. A topic created again, in this process or
// after a restart, gets a greater page than before (unless the clock is set
// back), so a client resuming with a page from before a restart is not
// mistaken for one of the new page. Microseconds reach MaxPage in the year
// 2255; nanoseconds would not fit in 53 bits today.
func newPage() uint64 {
	now := uint64(time.Now().UnixMicro())
	for {
		last := lastPage.Load()
		p := max(now, last+1)
		if lastPage.CompareAndSwap(last, p) {
			return p
		}
	}
}
