package topics

import (
	"context"
	"fmt"
	"math"
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

	// heldBack is set while publishes fail waiting for lossless readers: a
	// held-back episode, logged once.
	heldBack atomic.Bool

	// plain is set, before the instance is shared, when a typed publish
	// needs no check of its own: no rate limit, and a T that is not Value
	// (only Value topics are limited in size, counted in bytes and fed).
	plain bool

	// Under cache.mu: the sweeper's marks.
	idleSeen bool   // no subscriber at the last sweep
	idleMark uint64 // activity at the last sweep

	limiter *rateLimiter // the publish rate; nil when unlimited
	feed    *Feed        // set when the cache is sequenced elsewhere (seam.go)

	// sizes holds, for a Value topic of a cache with a byte budget, the
	// payload size of the item in each slot of the ring (see admitBytes).
	sizes []atomic.Uint32

	stats   topicStats    // open subscriptions and totals (stats.go)
	endHead atomic.Uint64 // the ring's head when the instance ended
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
	wake()
	elemType() reflect.Type
}

func (t *instance[T]) meta() *instanceMeta    { return &t.instanceMeta }
func (t *instance[T]) head() uint64           { return t.ring.Head() }
func (t *instance[T]) elemType() reflect.Type { return reflect.TypeFor[T]() }

// activity is a number that changes whenever the topic is published to in
// this process.
func (t *instance[T]) activity() uint64 {
	if t.feed != nil {
		return t.feed.sent.Load()
	}
	return t.ring.Head()
}

// end is called once the instance has ended, with its cache or dropped as
// idle: it wakes every parked reader, so that each sees the end, and lets go
// every publisher waiting for a lossless reader. It returns the instance's
// feed if the Sequencer must be told (Sequencer.Close); the caller tells it,
// holding no lock.
func (t *instance[T]) end(cause *endError) *Feed {
	t.endHead.Store(t.ring.Head())
	t.ring.RemoveGates()
	t.ring.WakeAll()
	if f := t.feed; f != nil && f.end(cause) {
		return f
	}
	return nil
}

// wake wakes every parked reader, to look at the cache again.
func (t *instance[T]) wake() { t.ring.WakeAll() }

// publish publishes v as publisher to an instance whose checks, admitPublish
// included, have passed, and gives the rate token back if it fails.
func (t *instance[T]) publish(ctx context.Context, publisher *string, v T) error {
	var err error
	if f := t.feed; f != nil {
		// Only Value topics are fed, so T is Value here.
		err = f.send(ctx, publisher, *(*Value)(unsafe.Pointer(&v)))
	} else {
		var seq uint64
		seq, err = t.ring.Publish(ctx, publisher, v)
		if err != nil {
			err = t.heldBackError(err)
		} else {
			if t.heldBack.Load() {
				t.heldBack.Store(false)
			}
			if t.sizes != nil {
				t.holdBytes(seq, (*Value)(unsafe.Pointer(&v)).Len())
			}
		}
	}
	if err != nil && t.limiter != nil {
		t.limiter.refund()
	}
	return err
}

// heldBackError is the error of a publish whose context ended while it
// waited for lossless readers (ctxErr), and logs the start of an episode.
func (t *instance[T]) heldBackError(ctxErr error) error {
	n := t.ring.Holding()
	if !t.heldBack.Swap(true) {
		t.cache.logHeldBack(t.name, t.currentPage(), n, ctxErr)
	}
	return fmt.Errorf("%w: topic %s of cache %q: %d lossless subscriptions have not read the item it would overwrite: %w",
		ErrHeldBack, quoteName(t.name), t.cache.name, n, ctxErr)
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

// A cache's byte budget (WithMaxBytes) bounds the payload bytes its Value
// topics hold. Each such topic notes the size of the payload in each slot of
// its ring; a publish swaps its size into its slot and adds the difference to
// the cache's count, so the count is the sum of what every ring holds (a
// publisher lapped while descheduled may leave its own size in a slot a
// newer item took, until the next lap). Rejected: reading the size of the
// item being overwritten from the ring's entries, whose memory a publisher
// may not read once it has left its slot.

// admitBytes refuses a publish of n payload bytes that would take the cache
// over its budget, counting what the publish will overwrite as freed.
func (t *instance[T]) admitBytes(n int) error {
	if t.sizes == nil {
		return nil
	}
	c := t.cache
	freed := int64(t.sizes[(t.ring.Head()+1)&uint64(len(t.sizes)-1)].Load())
	if c.bytes.Load()+int64(n)-freed > c.cfg.maxBytes {
		return &LimitError{Cache: c.name, Limit: "MaxBytes", Max: int(min(c.cfg.maxBytes, math.MaxInt)), Topic: t.name}
	}
	return nil
}

// holdBytes notes that the item at ring sequence seq holds n bytes.
//
// A slot that already notes n is left alone: swapping n for n changes
// nothing, and a load costs a fraction of a swap, which is a locked
// instruction, in the common stream of payloads of one size.
func (t *instance[T]) holdBytes(seq uint64, n int) {
	size := &t.sizes[seq&uint64(len(t.sizes)-1)]
	if size.Load() == uint32(n) {
		return
	}
	old := size.Swap(uint32(n))
	if d := int64(n) - int64(old); d != 0 {
		t.cache.bytes.Add(d)
	}
}

// heldBytes returns the payload bytes the instance's ring holds.
func (m *instanceMeta) heldBytes() int64 {
	var n int64
	for i := range m.sizes {
		n += int64(m.sizes[i].Load())
	}
	return n
}
