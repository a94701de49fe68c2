package topics

import (
	"context"
	"iter"
	"runtime"
	"sync/atomic"
	"time"
	"weak"

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
	end   atomic.Pointer[ending]
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
	gate        *ring.Gate      // the cursor publishers wait for (Lossless)
	ctx         context.Context // the Subscribe context, if it can end; Next looks at it
	stop        func() bool     // detaches from the Subscribe context; nil if it has none
	timer       *time.Timer     // ends the subscription at its EndAt time; nil if none
	cleanup     runtime.Cleanup // lets go of the gate if the subscription is dropped (Lossless)
	episodeLoss uint64          // items missed in this loss episode (log.go); reader only
	fed         fedReader       // where a reader of a fed topic is (seam.go); reader only
}

// An ending is why a subscription ended, and the topic's head at that
// moment: what it had not read up to there, it left unread.
type ending struct {
	err  *endError
	head uint64
}

var errSubscriptionClosed = &endError{msg: "topics: subscription closed"}

// The outcomes of reading one entry (fill).
const (
	filled  = iota // the item is in the caller's Item
	skipped        // the entry was passed over; read on
	stopped        // the subscription has ended; read no further
)

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
	if ctx.Done() != nil {
		s.opt.ctx, s.hot.ctxEnds = ctx, true
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
	ctxDone := func() { s.finish(ctxEnd(ctx)) }
	if cfg.lossless {
		// A lossless subscription dropped without Close would hold up the
		// publishers of its topic for good: the garbage collector lets go
		// of its gate. Nothing the engine keeps may reach it, so what ends
		// it later holds it weakly (see track, and Next's ctx.Done).
		ws := weak.Make(s)
		ctxDone = func() {
			if s := ws.Value(); s != nil {
				s.finish(ctxEnd(ctx))
			}
		}
		s.opt.cleanup = runtime.AddCleanup(s, abandoned[T], abandonedSub[T]{t, s.opt.gate, weak.Make(&s.stats)})
	}
	if ctx.Done() != nil {
		s.opt.stop = context.AfterFunc(ctx, ctxDone)
	}
	if !cfg.endAt.IsZero() {
		e := cfg.endError()
		s.opt.timer = time.AfterFunc(time.Until(cfg.endAt), func() { s.finish(e) })
	}
	return s, nil
}

// ctxEnd is the end of a subscription whose Subscribe context is done.
func ctxEnd(ctx context.Context) *endError {
	cause := context.Cause(ctx)
	return &endError{msg: "topics: subscription ended: " + cause.Error(), cause: cause}
}

// abandonedSub is what a lossless subscription's cleanup needs, and nothing
// that reaches the subscription.
type abandonedSub[T any] struct {
	t    *instance[T]
	gate *ring.Gate
	key  weak.Pointer[subStats]
}

// abandoned ends a lossless subscription that became unreachable without
// being closed: its gate goes, so that publishers go on. Its figures are
// lost with it.
func abandoned[T any](d abandonedSub[T]) {
	d.t.ring.RemoveGate(d.gate)
	d.t.untrackWeak(d.key)
	d.t.cache.leave(&d.t.instanceMeta)
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
	// The reader that keeps up, in the chunk it holds, with nothing to
	// report: the checks of the loop below, and fill's cheapest case.
	if !s.hot.fed && !s.hot.lossy && s.ended() == nil && ctx.Err() == nil {
		if e := r.ReadHeld(&s.cur, s.next); e != nil {
			d := s.hot.d
			s.fillOne(&it, e, s.next)
			s.commit(d, false)
			return it, nil
		}
	}
	for {
		if err := s.ended(); err != nil {
			s.final()
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
		s.wait(ctx)
	}
}

// wait is what a reader does when nothing is ready for it: it waits until
// something may have changed (a publish, an end, ctx done), and the caller
// then looks again, from its checks of an end on.
func (s *Subscription[T]) wait(ctx context.Context) {
	r := &s.topic.ring
	if e := s.topic.cache.closing.Load(); e != nil && s.next > r.Head() {
		// The cache is shutting down and everything published before is
		// read: the subscription is done.
		s.finish(e)
		return
	}
	// Park, then look once more (the ring's handshake makes sure a publish
	// or close after this look wakes us).
	r.Park(&s.waiter)
	if s.ended() != nil || r.Ready(s.next) {
		return
	}
	// About to sleep: let go of the chunk, which would keep it from being
	// reused.
	s.cur.Release()
	if done := ctx.Done(); done != nil {
		select {
		case <-s.waiter.C():
		case <-done:
			if s.hot.lossless {
				// Leave the ring's stack of parked readers now, so that it
				// does not keep a dropped lossless subscription (and the
				// publishers it holds up) alive.
				r.WakeAll()
			}
		}
	} else {
		<-s.waiter.C() // a plain receive: cheaper than a select
	}
}

// deliver fills it with entry e and moves the cursor past e, and reports
// whether it did (see fill). It writes into the caller's Item rather than
// returning one: returning a struct of nine words makes the compiler spill
// it and copy it again in wider moves, which stalls on store forwarding and
// cost about a third of a delivery.
func (s *Subscription[T]) deliver(it *Item[T], e *ring.Entry[T], seq uint64) bool {
	if s.fill(it, e, seq) != filled {
		return false
	}
	s.commit(s.hot.d-1, false)
	return true
}

// fill fills it with entry e, the item of sequence seq in the ring, moves
// the cursor past e and counts the delivery; the caller then commits. It
// returns skipped, having moved the cursor only, for an item of a fed topic
// too old to be placed (see fedReader.place), and stopped, having done
// nothing, when a lossless subscription finds itself lapped: its gate is
// gone, so it has ended, and a lossless subscription never reports a loss.
func (s *Subscription[T]) fill(it *Item[T], e *ring.Entry[T], seq uint64) int {
	if s.hot.lossless && seq != s.next && s.ended() != nil {
		return stopped
	}
	page, sequence, missed := s.topic.page, seq, seq-s.next
	if s.hot.fed {
		ringMissed := missed
		var ok bool
		if page, sequence, missed, ok = s.opt.fed.place(s.topic.feed, seq); !ok {
			s.stats.shiftStart(ringMissed+1, 0)
			s.next = seq + 1
			return skipped
		}
		if missed != ringMissed {
			// Lag counts ring sequences: a gap in the feed had none, and
			// the lost end of a previous page is not Missed in this one.
			s.stats.shiftStart(ringMissed, missed)
		}
	}
	setItem(it, e, s.topic.name, page, sequence)
	it.Missed = missed
	if missed != 0 || s.hot.lossy {
		s.recordLoss(seq, page, sequence, missed)
	}
	s.next = seq + 1
	s.hot.d++
	return filled
}

// fillRun is fill for as many entries of run as fit in items, in the case
// that needs none of fill's exceptions: run starts where the reader is (no
// loss, so no loss episode either), and the topic is not fed. It returns how
// many items it filled.
func (s *Subscription[T]) fillRun(items []Item[T], run []ring.Entry[T], seq uint64) int {
	k := min(len(items), len(run))
	name, page := s.topic.name, s.topic.page
	items, run = items[:k], run[:k]
	for i := range items {
		setItem(&items[i], &run[i], name, page, seq+uint64(i))
	}
	s.next = seq + uint64(k)
	s.hot.d += uint64(k)
	return k
}

// fillOne is fillRun for one entry, small enough to be inlined.
func (s *Subscription[T]) fillOne(it *Item[T], e *ring.Entry[T], seq uint64) {
	setItem(it, e, s.topic.name, s.topic.page, seq)
	s.next = seq + 1
	s.hot.d++
}

// setItem writes entry e, item seq of page of topic name, with nothing
// missed before it, into it: field by field, since a composite literal is
// built on the stack and copied.
func setItem[T any](it *Item[T], e *ring.Entry[T], name string, page, seq uint64) {
	it.Topic = name
	it.Sequence = seq
	it.Page = page
	it.Missed = 0
	if p := e.Publisher; p != nil {
		it.Publisher = *p
	} else {
		it.Publisher = ""
	}
	it.Value = e.Value
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
// statsEvery, changed the missed count, or caught up with the topic. A
// caller that knows the next item to be ready says so with ahead, which
// spares the look at the ring.
func (s *Subscription[T]) commit(d uint64, ahead bool) {
	if s.hot.lossless {
		s.opt.gate.Advance(s.next)
	}
	if s.hot.d/statsEvery != d/statsEvery || s.hot.dirty || !ahead && !s.topic.ring.Ready(s.next) {
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
		return 0, s.ended()
	}
	r := &s.topic.ring
	for {
		// The first run as Next gets its item: waiting if need be, or
		// reporting why there will be none.
		run, seq, err := s.waitRun(ctx)
		if err != nil {
			return 0, err
		}
		d := s.hot.d
		n := 0
	read:
		for {
			if seq == s.next && !s.hot.fed && !s.hot.lossy {
				n += s.fillRun(items[n:], run, seq)
			} else {
				for i := range run {
					if n == len(items) {
						break read
					}
					switch s.fill(&items[n], &run[i], seq+uint64(i)) {
					case filled:
						n++
					case stopped:
						break read
					}
				}
			}
			if n == len(items) {
				break
			}
			if run, seq = r.ReadRun(&s.cur, s.next); run == nil {
				break
			}
		}
		if n > 0 {
			s.commit(d, false)
			return n, nil
		}
		// Every entry was passed over, or a lossless subscription found
		// itself lapped (it has ended): look again, as Next does.
	}
}

// waitRun returns the entries that are ready from the one the reader wants
// next (see ring.ReadRun) and the sequence of the first, waiting as Next
// does if none is, or the error Next would return. It moves no cursor.
func (s *Subscription[T]) waitRun(ctx context.Context) ([]ring.Entry[T], uint64, error) {
	r := &s.topic.ring
	for {
		if err := s.ended(); err != nil {
			s.final()
			return nil, 0, err
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		if run, seq := r.ReadRun(&s.cur, s.next); run != nil {
			return run, seq, nil
		}
		s.wait(ctx)
	}
}

// ended returns the error that ended the subscription, or nil. A Subscribe
// context that is done ends the subscription here, at once, rather than
// when its AfterFunc gets to run.
func (s *Subscription[T]) ended() error {
	if e := s.end.Load(); e != nil {
		return e.err
	}
	if e := s.topic.cache.end.Load(); e != nil {
		return e
	}
	if s.hot.ctxEnds && s.opt.ctx.Err() != nil {
		s.finish(ctxEnd(s.opt.ctx))
		return s.end.Load().err
	}
	return nil
}

// final is what the reader does once it has seen the end: it lets go of
// the Subscribe context and of its chunk, and makes its statistics final.
func (s *Subscription[T]) final() {
	s.detach()
	s.cur.Release()
	if !s.hot.final {
		s.hot.final = true
		s.topic.finalStats(&s.stats)
	}
}

// All returns an iterator over the subscription's items, for use in a range
// loop. The loop runs until the subscription ends or ctx is done, and then
// yields the error (wrapping ErrClosed, or ctx.Err()) once with a zero Item.
// When the loop ends, for whatever reason, the subscription is closed.
//
// All reads the items that are ready together, as NextBatch does, and
// hands them out one at a time: an end, or ctx done, stops the loop before
// the next item, and the items not yet handed out when the loop ends are
// left unread (SubscriptionStats.Unread), not counted as delivered.
func (s *Subscription[T]) All(ctx context.Context) iter.Seq2[Item[T], error] {
	mustContext(ctx)
	return func(yield func(Item[T], error) bool) {
		defer s.closeByReader()
		// Items are read a run at a time, as NextBatch reads them, but
		// handed out one by one with the cursor moved past each: the
		// statistics stay exact, and an item not yet handed out when the
		// loop ends is unread, not lost. Every item gets the checks Next
		// makes, so an end or a done ctx stops the loop at once.
		done := ctx.Done()
		var it Item[T]
		for {
			run, seq, err := s.waitRun(ctx)
			if err != nil {
				yield(Item[T]{}, err)
				return
			}
			last := len(run) - 1
			for i := range run {
				sq := seq + uint64(i)
				if i > 0 && (sq != s.next || s.ended() != nil || done != nil && ctx.Err() != nil) {
					break // waitRun sees why, or reads from where the reader is
				}
				d := s.hot.d
				if sq == s.next && !s.hot.fed && !s.hot.lossy {
					s.fillOne(&it, &run[i], sq)
				} else if s.fill(&it, &run[i], sq) != filled {
					break
				}
				s.commit(d, i < last) // the rest of the run is ready
				if !yield(it, nil) {
					return
				}
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
// makes its statistics final.
func (s *Subscription[T]) closeByReader() {
	s.Close()
	s.final()
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
	end := &ending{err: e, head: s.topic.ring.Head()}
	if !s.end.CompareAndSwap(nil, end) {
		return
	}
	s.topic.untrack(&s.stats, end.head)
	if s.hot.lossless {
		s.opt.cleanup.Stop()
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
