package topics

import (
	"context"
	"iter"
	"sync/atomic"
	"time"

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
	topic *instance[T]
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
	timer       *time.Timer // ends the subscription at its EndAt time; nil if none
	episodeLoss uint64      // items missed in this loss episode (log.go); reader only
	fed         fedReader   // where a reader of a fed topic is (seam.go); reader only
}

var errSubscriptionClosed = &endError{msg: "topics: subscription closed"}

func subscribe[T any](ctx context.Context, c *Cache, name string, opts []SubscribeOption) (*Subscription[T], error) {
	cfg, err := buildSubscribeConfig(opts)
	if err != nil {
		return nil, err
	}
	if err := ValidateTopicName(name); err != nil {
		return nil, err
	}
	if err := c.usable(ctx); err != nil {
		return nil, err
	}
	if !cfg.endAt.IsZero() && !time.Now().Before(cfg.endAt) {
		return nil, cfg.endError()
	}
	if err := c.reserveSubscriber(); err != nil {
		return nil, err
	}
	t, err := acquireSubscribed[T](c, name)
	if err != nil {
		c.nsubs.Add(-1)
		return nil, err
	}
	if f := t.feed; f != nil {
		f.open()
		if err := f.wait(ctx); err != nil {
			c.leave(&t.instanceMeta)
			return nil, err
		}
	}
	s := &Subscription[T]{topic: t}
	if cfg.lossless || ctx.Done() != nil || !cfg.endAt.IsZero() || c.cfg.logger != nil || t.feed != nil {
		s.opt = new(subOptional)
	}
	start := func(head uint64) uint64 { return startAt(t, cfg, head) }
	if f := t.feed; f != nil {
		s.hot.fed = true
		start = func(head uint64) uint64 { return s.opt.fed.start(f, cfg, head) }
	}
	if cfg.lossless {
		s.opt.gate, s.next = t.ring.AddGate(start)
		s.hot.lossless = true
	} else {
		s.next = start(t.ring.Head())
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
	if !cfg.endAt.IsZero() {
		end := cfg.endError()
		s.opt.timer = time.AfterFunc(time.Until(cfg.endAt), func() { s.finish(end) })
	}
	return s, nil
}

// startAt returns the first sequence a new subscription wants, given the
// newest sequence claimed.
func startAt[T any](t *instance[T], cfg subscribeConfig, head uint64) uint64 {
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
	mustContext(ctx)
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
			if s.deliver(&it, e, seq) {
				return it, nil
			}
			continue
		}
		// Nothing to read: park, then look once more (the ring's handshake
		// makes sure a publish or close after this look wakes us).
		r.Park(&s.waiter)
		if s.ended() != nil {
			continue
		}
		if e, seq := r.Read(&s.cur, s.next); e != nil {
			if s.deliver(&it, e, seq) {
				return it, nil
			}
			continue
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

// deliver fills it with entry e and moves the cursor past e, and reports
// whether it did (see fill). It writes into the caller's Item rather than
// returning one: returning a struct of nine words makes the compiler spill
// it and copy it again in wider moves, which stalls on store forwarding and
// cost about a third of a delivery.
func (s *Subscription[T]) deliver(it *Item[T], e *ring.Entry[T], seq uint64) bool {
	if !s.fill(it, e, seq) {
		return false
	}
	s.commit(s.hot.d - 1)
	return true
}

// fill fills it with entry e, the item of sequence seq in the ring, moves
// the cursor past e and counts the delivery. The caller then commits. It
// returns false, having moved the cursor only, for an item of a fed topic
// too old to be placed (see fedReader.place).
func (s *Subscription[T]) fill(it *Item[T], e *ring.Entry[T], seq uint64) bool {
	// Field by field: a composite literal is built on the stack and copied.
	it.Topic = s.topic.name
	it.Sequence = seq
	it.Page = s.topic.page
	it.Missed = seq - s.next
	if s.hot.fed {
		ringMissed := it.Missed
		var ok bool
		if it.Page, it.Sequence, it.Missed, ok = s.opt.fed.place(s.topic.feed, seq); !ok {
			s.stats.shiftStart(ringMissed+1, 0)
			s.next = seq + 1
			return false
		}
		if it.Missed != ringMissed {
			// Lag counts ring sequences: a gap in the feed had none, and
			// the lost end of a previous page is not Missed in this one.
			s.stats.shiftStart(ringMissed, it.Missed)
		}
	}
	if p := e.Publisher; p != nil {
		it.Publisher = *p
	} else {
		it.Publisher = ""
	}
	it.Value = e.Value
	if it.Missed != 0 || s.hot.lossy {
		s.recordLoss(seq, it.Page, it.Sequence, it.Missed)
	}
	s.next = seq + 1
	s.hot.d++
	return true
}

// recordLoss counts the items lost before an item (at ring sequence seq,
// item sequence of page), and tracks loss episodes for the logger. Only the
// reading goroutine calls it.
func (s *Subscription[T]) recordLoss(seq, page, sequence, missed uint64) {
	if missed > 0 {
		s.hot.m += missed
		s.hot.dirty = true
		if s.topic.cache.cfg.logger != nil {
			s.lossStarted(page, sequence, missed)
		}
	}
	if s.hot.lossy && seq >= s.topic.ring.Head() {
		s.caughtUp(page, sequence)
	}
}

// commit follows one or more fills, the first of which found the count of
// deliveries at d: it lets lossless publishers past what was read, and
// publishes the statistics when the deliveries crossed a multiple of
// statsEvery, changed the missed count, or caught up with the topic.
func (s *Subscription[T]) commit(d uint64) {
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
	mustContext(ctx)
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
	for n < len(items) {
		e, seq := r.Read(&s.cur, s.next)
		if e == nil {
			break
		}
		if s.fill(&items[n], e, seq) {
			n++
		}
	}
	if n > 1 {
		s.commit(d)
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
	mustContext(ctx)
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

// detach stops watching the Subscribe context and the EndAt time. It is
// safe to call more than once and from several goroutines.
func (s *Subscription[T]) detach() {
	if o := s.opt; o != nil {
		if o.stop != nil {
			o.stop()
		}
		if o.timer != nil {
			o.timer.Stop()
		}
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
	s.topic.cache.leave(&s.topic.instanceMeta)
	s.waiter.Wake()
}

// noCopy makes go vet's copylocks check report copies of the struct that
// holds it.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
