package topics

import (
	"context"
	"iter"
	"sync/atomic"

	"github.com/ringbus/topics/internal/ring"
)

// An Item is one published value as a subscriber receives it.
type Item[T any] struct {
	Topic     string
	Sequence  uint64 // 1, 2, 3 … per topic instance, in publish order
	Page      uint64 // the topic instance; a new, greater page when a topic is re-created
	Publisher string // the publisher's identity where one is known, else ""
	Missed    uint64 // items of this page that this subscription lost just before this one
	Value     T
}

// A Subscription is one reader of one topic: it receives every item
// published to the topic while it is open, in order, except those it falls
// too far behind to read, which it is told about through Item.Missed.
//
// A Subscription is read (Next, All) by one goroutine at a time; Close and
// Stats may be called from any goroutine, at any time. It must not be
// copied. An open subscription costs a cursor and holds no queue: it never
// slows publishers.
type Subscription[T any] struct {
	_ noCopy

	// The first 64 bytes hold what the reading goroutine touches for every
	// item; the other 64 are cold. Subscriptions are 128-byte objects, which
	// the allocator aligns to 128 bytes, so the hot bytes of a subscription
	// fill a cache line of their own: readers on different cores do not slow
	// each other down (TestSubscriptionLayout).

	// next is the sequence of the item wanted next. It is owned by the
	// reading goroutine.
	next  uint64
	topic *topic[T]
	cur   ring.Cursor[T] // the chunk of entries the reader holds; reader only
	end   atomic.Pointer[endError]
	hot   hotCounts // statistics kept by the reader (stats.go)

	// Cold: read once per subscription, or written by publishers only
	// when they wake it (the waiter).
	opt    *subOptional // what only some subscriptions need; nil for the others
	waiter ring.Waiter
	stats  subStats // the statistics' view of this subscription (stats.go)
}

// subOptional holds the parts of a subscription that most do without, so
// that a plain one fits in 128 bytes. It is set before the subscription is
// handed out and not replaced afterwards.
type subOptional struct {
	gate        *ring.Gate  // the cursor publishers wait for (Lossless)
	stop        func() bool // detaches from the Subscribe context; nil if it has none
	episodeLoss uint64      // items missed in this loss episode (log.go); reader only
}

var errSubscriptionClosed = &endError{msg: "topics: subscription closed"}

func subscribe[T any](ctx context.Context, c *Cache, name string, opts []SubscribeOption) (*Subscription[T], error) {
	cfg, err := buildSubscribeConfig(opts)
	if err != nil {
		return nil, err
	}
	if err := validateTopicName(name); err != nil {
		return nil, err
	}
	if err := c.usable(ctx); err != nil {
		return nil, err
	}
	if err := c.reserveSubscriber(); err != nil {
		return nil, err
	}
	t, err := acquireSubscribed[T](c, name)
	if err != nil {
		c.nsubs.Add(-1)
		return nil, err
	}
	s := &Subscription[T]{topic: t}
	if cfg.lossless || ctx.Done() != nil || c.cfg.logger != nil {
		s.opt = new(subOptional)
	}
	if cfg.lossless {
		s.opt.gate, s.next = t.ring.AddGate(func(head uint64) uint64 { return startAt(t, cfg, head) })
		s.hot.lossless = true
	} else {
		s.next = startAt(t, cfg, t.ring.Head())
	}
	s.waiter.Init()
	t.track(&s.stats, s.next)
	if ctx.Done() != nil {
		s.opt.stop = context.AfterFunc(ctx, func() {
			s.finish(&endError{
				msg:   "topics: subscription ended: " + context.Cause(ctx).Error(),
				cause: context.Cause(ctx),
			})
		})
	}
	return s, nil
}

// startAt returns the first sequence a new subscription wants, given the
// newest sequence claimed.
func startAt[T any](t *topic[T], cfg subscribeConfig, head uint64) uint64 {
	switch {
	case !cfg.resume || cfg.resumeSequence > head+1 && cfg.resumePage == t.page:
		return head + 1
	case cfg.resumePage != t.page:
		// Read from 1 and let the ring skip to the oldest item it holds:
		// Missed then counts what of this page is gone.
		return 1
	default:
		return cfg.resumeSequence
	}
}

// Next returns the next item, waiting for one to be published if need be.
//
// It returns an error wrapping ErrClosed once the subscription has ended
// (see the package doc for every way it can), and ctx.Err() if ctx is done
// first; the subscription then stays open. While an item is ready, Next
// neither blocks nor allocates.
func (s *Subscription[T]) Next(ctx context.Context) (it Item[T], err error) {
	r := &s.topic.ring
	for {
		if err := s.ended(); err != nil {
			// Ended by its cache or engine, perhaps: let go of the Subscribe
			// context now, so that a subscription read to its end holds
			// nothing through it.
			s.detach()
			s.cur.Release()
			return Item[T]{}, err
		}
		if err := ctx.Err(); err != nil {
			return Item[T]{}, err
		}
		if e, seq := r.Read(&s.cur, s.next); e != nil {
			s.noteLoss(seq)
			s.deliver(&it, e, seq)
			return it, nil
		}
		// Nothing to read: park, then look once more (the ring's handshake
		// makes sure a publish or close after this look wakes us).
		r.Park(&s.waiter)
		if s.ended() != nil {
			continue
		}
		if e, seq := r.Read(&s.cur, s.next); e != nil {
			s.noteLoss(seq)
			s.deliver(&it, e, seq)
			return it, nil
		}
		// About to sleep: let go of the chunk, which would keep it from
		// being reused.
		s.cur.Release()
		if done := ctx.Done(); done != nil {
			select {
			case <-s.waiter.C():
			case <-done:
			}
		} else {
			<-s.waiter.C() // a plain receive: cheaper than a select
		}
	}
}

// deliver fills it with entry e and moves the cursor past e. It writes into
// the caller's Item rather than returning one: returning a struct of nine
// words makes the compiler spill it and copy it again in wider moves, which
// stalls on store forwarding and cost about a third of a delivery.
func (s *Subscription[T]) deliver(it *Item[T], e *ring.Entry[T], seq uint64) {
	s.fill(it, e, seq)
	s.settle(s.hot.d - 1)
}

// fill fills it with entry e, moves the cursor past e and counts the
// delivery. The caller then settles.
func (s *Subscription[T]) fill(it *Item[T], e *ring.Entry[T], seq uint64) {
	// Field by field: a composite literal is built on the stack and copied.
	it.Topic = s.topic.name
	it.Sequence = seq
	it.Page = s.topic.page
	if p := e.Publisher; p != nil {
		it.Publisher = *p
	} else {
		it.Publisher = ""
	}
	it.Missed = seq - s.next
	it.Value = e.Value
	s.next = seq + 1
	s.hot.d++
}

// settle follows one or more fills, the first of which found the count of
// deliveries at d: it lets lossless publishers past what was read, and
// publishes the statistics when the deliveries crossed a multiple of
// statsEvery, changed the missed count, or caught up with the topic.
func (s *Subscription[T]) settle(d uint64) {
	if s.hot.lossless {
		s.opt.gate.Advance(s.next)
	}
	if s.hot.d/statsEvery != d/statsEvery || s.hot.dirty || !s.topic.ring.Ready(s.next) {
		s.stats.flush()
	}
}

// NextBatch reads into items every item that is ready, in order, up to
// len(items), and returns how many it read. If none is ready it waits for
// one as Next does, so it returns at least one item, or none with the error
// Next would return. Each item's Missed counts what was lost just before it,
// as with Next.
//
// A reader that gets behind reads its backlog in a few calls instead of one
// call per item: the checks Next makes for every item (has the subscription
// ended, is ctx done) are made once per call, the statistics are published
// by the rule Next follows (see SubscriptionStats) applied to the whole
// call, and the items are written in place, where a caller of Next stores
// the Item it returns and copies it again (the compiler does not keep a
// struct of more than four fields in registers). Items already in the buffer are returned
// even if the subscription ends while NextBatch reads them; the next call
// reports the end.
func (s *Subscription[T]) NextBatch(ctx context.Context, items []Item[T]) (int, error) {
	if len(items) == 0 {
		return 0, nil
	}
	// The first item as Next gets it: waiting if need be, or reporting why
	// there will be none.
	it, err := s.Next(ctx)
	if err != nil {
		return 0, err
	}
	items[0] = it
	r := &s.topic.ring
	d := s.hot.d
	n := 1
	for ; n < len(items); n++ {
		e, seq := r.Read(&s.cur, s.next)
		if e == nil {
			break
		}
		s.noteLoss(seq)
		s.fill(&items[n], e, seq)
	}
	if n > 1 {
		s.settle(d)
	}
	return n, nil
}

// ended returns the error that ended the subscription, or nil.
func (s *Subscription[T]) ended() error {
	if e := s.end.Load(); e != nil {
		return e
	}
	if e := s.topic.cache.end.Load(); e != nil {
		return e
	}
	return nil
}

// All returns an iterator over the subscription's items, for use in a range
// loop. The loop runs until the subscription ends or ctx is done, and then
// yields the error (wrapping ErrClosed, or ctx.Err()) once with a zero Item.
// When the loop ends, for whatever reason, the subscription is closed.
func (s *Subscription[T]) All(ctx context.Context) iter.Seq2[Item[T], error] {
	return func(yield func(Item[T], error) bool) {
		defer s.closeByReader()
		for {
			it, err := s.Next(ctx)
			if err != nil {
				yield(Item[T]{}, err)
				return
			}
			if !yield(it, nil) {
				return
			}
		}
	}
}

// Close closes the subscription. A Next waiting in another goroutine returns
// at once with an error wrapping ErrClosed. Close is idempotent and always
// returns nil.
func (s *Subscription[T]) Close() error {
	s.finish(errSubscriptionClosed)
	s.detach()
	return nil
}

// closeByReader closes the subscription from its reading goroutine, which
// first publishes its statistics so that they are final.
func (s *Subscription[T]) closeByReader() {
	s.stats.flush()
	s.Close()
	s.cur.Release()
}

// detach stops watching the Subscribe context. It is safe to call more than
// once and from several goroutines.
func (s *Subscription[T]) detach() {
	if s.opt != nil && s.opt.stop != nil {
		s.opt.stop()
	}
}

// alsoOnDetach makes detach call release too, once the subscription no
// longer watches its Subscribe context: Session.Subscribe uses it to cancel
// the context it derived for the token's expiry, so that its timer and its
// place in the caller's context go when the subscription does. It must be
// called before the subscription is handed out. release must be safe to call
// more than once and from several goroutines.
func (s *Subscription[T]) alsoOnDetach(release func()) {
	if s.opt == nil {
		s.opt = new(subOptional)
	}
	stop := s.opt.stop
	s.opt.stop = func() bool {
		stopped := stop != nil && stop()
		release()
		return stopped
	}
}

// finish ends the subscription with e, unless it has ended already. The
// first end is the one Next reports from then on: if the cache has ended
// (closed, deleted), that end stays the reason, even if Close or the
// Subscribe context comes later.
func (s *Subscription[T]) finish(e *endError) {
	if ce := s.topic.cache.end.Load(); ce != nil {
		e = ce
	}
	if !s.end.CompareAndSwap(nil, e) {
		return
	}
	s.topic.untrack(&s.stats)
	if s.hot.lossless {
		s.topic.ring.RemoveGate(s.opt.gate)
	}
	s.topic.cache.releaseSubscriber(&s.topic.topicMeta)
	s.waiter.Wake()
}

// noCopy makes go vet's copylocks check report copies of the struct that
// holds it.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
