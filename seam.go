package topics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Building on the engine.
//
// The calls in this file are the seam through which other packages build
// on the engine: package access (tokens and sessions for untrusted
// clients), the NATS JetStream bridge and the Momento-protocol server. An
// application that publishes and subscribes in its own process does not
// need them. They decide what the engine otherwise decides itself: who
// published an item (PublishAs), when a subscription ends (EndAt), whether a
// client may hold up publishers (NoLossless), and who numbers the items of
// a topic (Sequencer, Feed).

// PublishAs publishes v to the topic, as Publish does, with publisher as the
// item's Item.Publisher. It is for servers that publish on behalf of
// authenticated clients (package access stamps the token's ID) and for
// bridges that carry an identity from elsewhere. v is shared with every
// subscriber as it is: Values are immutable, so it is not copied.
func (c *Cache) PublishAs(ctx context.Context, topic, publisher string, v Value) error {
	mustContext(ctx)
	t, err := c.valueTopic(ctx, topic, v.Len())
	if err != nil {
		return err
	}
	return t.publish(ctx, &publisher, v)
}

// EndAt ends the subscription at time t: from then on Next returns an error
// wrapping ErrClosed and cause (a Next waiting then returns at once). A time
// already past makes Subscribe return that error instead. A server uses it
// to end a client's subscription when the client's credentials expire;
// within one program a context with a deadline does the same.
func EndAt(t time.Time, cause error) SubscribeOption {
	return subscribeOption(func(c *subscribeConfig) error {
		c.endAt, c.endCause = t, cause
		return nil
	})
}

// NoLossless makes Subscribe refuse Lossless among the same options, with an
// error wrapping ErrInvalidOption. A server that passes a client's options
// through adds it, so that no client can hold up the publishers of a topic.
func NoLossless() SubscribeOption {
	return subscribeOption(func(c *subscribeConfig) error {
		c.noLossless = true
		return nil
	})
}

// A Sequencer numbers the items of a cache's topics outside the engine, so
// that several processes share one order per topic: the NATS JetStream
// bridge is one. A cache given a Sequencer ([WithSequencer]) no longer numbers
// the items of its topics itself. Every publish to one of its topics goes to
// the Sequencer, and what the cache's subscriptions receive is what the
// Sequencer puts into the topic's [Feed], which it gets when the first
// subscription of the topic needs it (Open).
//
// The topics of a sequenced cache carry Value only: TopicOf for another type
// returns an error wrapping ErrTopicType, since a Go value does not cross a
// process boundary without an encoding.
//
// The engine calls a Sequencer from many goroutines at once, and never while
// it holds a lock of its own.
type Sequencer interface {
	// Publish sequences one item published to a topic of the cache, after
	// the engine's own checks (name, size, rate, closed) have passed. It
	// returns once the item has its place in the topic's order, or with an
	// error, which the publisher gets as it is. It honours ctx. The item
	// reaches this cache's subscribers through the topic's Feed, like every
	// other item.
	Publish(ctx context.Context, cache, topic, publisher string, v Value) error
	// Open starts feeding the topic of f: the first subscription of a topic
	// that has none in this process calls it, and waits for f.Ready (or
	// f.Fail). It must not block.
	Open(f *Feed)
	// Close stops feeding f: the cache has dropped the topic for idleness,
	// or has closed. It is called once for every Feed that was opened and
	// did not fail. It must not block. Puts after Close return an error
	// wrapping ErrClosed.
	Close(f *Feed)
}

// WithSequencer makes caches number the items of their topics through s (see
// Sequencer). Given to New, it applies to every cache of the engine. A nil s
// is refused with ErrInvalidOption.
func WithSequencer(s Sequencer) Option {
	return cacheOption(func(c *cacheConfig) error {
		if s == nil {
			return fmt.Errorf("%w: WithSequencer(nil)", ErrInvalidOption)
		}
		c.sequencer = s
		return nil
	})
}

// A Feed is the write side of one topic of a sequenced cache: the topic's
// Sequencer puts into it every item of the topic, in order, numbered by
// whoever sequences them, and the cache's subscriptions read them as they
// read any topic, with the same rules for order, loss and resumption.
//
// Calls to Put, Ready and Fail must come from one goroutine at a time. The
// zero Feed is not usable: the cache makes one per topic and hands it to
// Sequencer.Open.
type Feed struct {
	t   *instance[Value]
	seq Sequencer

	// sent counts publishes handed to the sequencer. They do not move the
	// ring, which only the feed writes, so the sweeper watches this instead.
	sent atomic.Uint64

	opened atomic.Bool   // Open was called
	ready  chan struct{} // closed by Ready, Fail or the end of the topic
	closed atomic.Bool   // Put is refused
	// failure is why subscriptions cannot start, or nil; written before
	// ready is closed.
	failure error

	// segs maps ring sequences to pages and sequences (see segment). It is
	// replaced, never modified, by the feeding goroutine, and read by
	// every subscription of the topic.
	segs atomic.Pointer[[]segment]

	mu        sync.Mutex // serialises Put, Ready, Fail and the end
	page      uint64     // the page of the last item put or of Ready
	last      uint64     // the sequence of that item
	isReady   bool       // ready is closed
	publisher *string    // the last publisher put, reused while it repeats
}

// A segment is a run of items that follow each other in the ring and in
// their page: the item at ring sequence r (start ≤ r < the next segment's
// start) is item r - base of page. The ring numbers every item it holds
// without gaps, as its reading rule needs; a gap in a feed's sequences or a
// new page starts a new segment. Subtraction is modulo 2^64, so base may
// stand for a negative number.
type segment struct {
	start uint64
	base  uint64
	page  uint64
}

// segmentsKept is how many laps of the ring the segments cover behind the
// newest one, so that a reader placing an item it has just read finds its
// segment (a reader descheduled for longer skips the item, as lapped).
const segmentsKept = 4

func newFeed(t *instance[Value], s Sequencer) *Feed {
	return &Feed{t: t, seq: s, ready: make(chan struct{})}
}

// Cache returns the name of the feed's cache.
func (f *Feed) Cache() string { return f.t.cache.name }

// Topic returns the name of the feed's topic.
func (f *Feed) Topic() string { return f.t.name }

var errFeedOrder = fmt.Errorf("%w: Feed", ErrInvalidOption)

// Put adds an item to the topic, as item sequence of page, published by
// publisher ("" if unknown).
//
// Within a page, sequences must grow. A sequence that skips some is a gap:
// subscriptions that read on from before it are told, through Item.Missed,
// how many items they lost. A greater page starts a new page: subscriptions
// go on with it, and the first item they read of it reports in Missed the
// items of that page before it. Put refuses, with ErrInvalidOption, a page
// or sequence that goes backwards, a page that is 0 or above MaxPage, and
// sequence 0.
//
// Put waits only for a Lossless subscription of this cache that has not
// read the item it would overwrite, and then returns ctx.Err() if ctx ends
// first, having put nothing. After the topic has ended (Sequencer.Close) it
// returns an error wrapping ErrClosed.
func (f *Feed) Put(ctx context.Context, page, sequence uint64, publisher string, v Value) error {
	mustContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Load() {
		return f.endedError()
	}
	switch {
	case page == 0 || page > MaxPage:
		return fmt.Errorf("%w: Put(page %d): pages are 1 to %d", errFeedOrder, page, uint64(MaxPage))
	case sequence == 0:
		return fmt.Errorf("%w: Put(sequence 0): sequences start at 1", errFeedOrder)
	case page < f.page || page == f.page && sequence <= f.last:
		return fmt.Errorf("%w: Put(%d:%d) after %d:%d: pages and sequences only grow", errFeedOrder, page, sequence, f.page, f.last)
	}
	r := &f.t.ring
	next := r.Head() + 1 // only the feed writes this ring, under f.mu
	if segs := f.segs.Load(); segs == nil || page != f.page || sequence != f.last+1 {
		f.addSegment(next, sequence, page)
	}
	if f.publisher == nil || *f.publisher != publisher {
		f.publisher = &publisher
	}
	got, err := r.Publish(ctx, f.publisher, v)
	if err != nil {
		return f.t.heldBackError(err)
	}
	if got != next {
		panic("topics: internal error: a fed ring was published to by someone else")
	}
	if f.t.sizes != nil {
		// Counted, never refused: the item is published already, elsewhere.
		f.t.holdBytes(got, v.Len())
	}
	f.page, f.last = page, sequence
	return nil
}

// Ready says that the topic is at item last of page (0 if the page has no
// item yet): subscriptions without ResumeAt start after it, and ResumeAt finds
// whatever was put before. Subscriptions wait for Ready; the items a feed puts
// before it are the retained history that ResumeAt can reach. Ready may be
// called once, and not after Fail; the rules of Put apply to page and last.
func (f *Feed) Ready(page, last uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed.Load():
		return f.endedError()
	case f.isReady:
		return fmt.Errorf("%w: Ready called twice", errFeedOrder)
	case page == 0 || page > MaxPage:
		return fmt.Errorf("%w: Ready(page %d): pages are 1 to %d", errFeedOrder, page, uint64(MaxPage))
	case page < f.page || page == f.page && last < f.last:
		return fmt.Errorf("%w: Ready(%d:%d) after %d:%d: pages and sequences only grow", errFeedOrder, page, last, f.page, f.last)
	}
	if f.segs.Load() == nil || page != f.page || last != f.last {
		f.addSegment(f.t.ring.Head()+1, last+1, page)
	}
	f.page, f.last = page, last
	f.isReady = true
	close(f.ready)
	return nil
}

// Fail says that the topic cannot be fed: subscriptions waiting for Ready,
// and those that come before the cache forgets the topic, return an error
// wrapping err. The cache forgets the topic at once, so that its next use
// opens it again with a new Feed; the Sequencer gets no Close for f. After
// Ready, Fail does nothing.
func (f *Feed) Fail(err error) {
	f.mu.Lock()
	if f.isReady || f.closed.Load() {
		f.mu.Unlock()
		return
	}
	f.closed.Store(true)
	f.failure = fmt.Errorf("topics: topic %s of cache %q could not be opened: %w", quoteName(f.t.name), f.t.cache.name, err)
	f.isReady = true
	close(f.ready)
	f.mu.Unlock()
	f.t.cache.forget(f.t)
}

// end ends the feed with the topic: Put is refused from now on, and
// subscriptions waiting for Ready get cause. It reports whether the
// Sequencer must be told (Close).
func (f *Feed) end(cause error) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Swap(true) {
		return false
	}
	if !f.isReady {
		f.failure = cause
		f.isReady = true
		close(f.ready)
	}
	return f.opened.Load()
}

func (f *Feed) endedError() error {
	return fmt.Errorf("%w: topic %s of cache %q is no longer fed", ErrClosed, quoteName(f.t.name), f.t.cache.name)
}

// addSegment starts a segment at ring sequence start with item sequence of
// page, dropping the segments that no reader can need any more.
func (f *Feed) addSegment(start, sequence, page uint64) {
	var old []segment
	if p := f.segs.Load(); p != nil {
		old = *p
	}
	keep := start - min(start, segmentsKept*uint64(f.t.ring.Size()))
	i := 0
	for i+1 < len(old) && old[i+1].start <= keep {
		i++
	}
	old = old[i:]
	if n := len(old); n > 0 && old[n-1].start == start {
		old = old[:n-1] // nothing was put in it (a Put that failed)
	}
	segs := make([]segment, len(old), len(old)+1)
	copy(segs, old)
	segs = append(segs, segment{start: start, base: start - sequence, page: page})
	f.segs.Store(&segs)
}

// lastSegment returns the newest segment, or nil before the first Put or
// Ready.
func (f *Feed) lastSegment() *segment {
	p := f.segs.Load()
	if p == nil {
		return nil
	}
	return &(*p)[len(*p)-1]
}

// open calls the Sequencer's Open once.
func (f *Feed) open() {
	if !f.opened.Load() && f.opened.CompareAndSwap(false, true) {
		f.seq.Open(f)
	}
}

// wait waits until subscriptions may start.
func (f *Feed) wait(ctx context.Context) error {
	select {
	case <-f.ready:
		return f.failure
	default:
	}
	select {
	case <-f.ready:
		return f.failure
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send hands a publish to the Sequencer.
func (f *Feed) send(ctx context.Context, publisher *string, v Value) error {
	p := ""
	if publisher != nil {
		p = *publisher
	}
	f.sent.Add(1)
	return f.seq.Publish(ctx, f.t.cache.name, f.t.name, p, v)
}

// A fedReader is what a subscription of a fed topic knows of the segments:
// where it is, and which item of which page it expects next.
type fedReader struct {
	segs *[]segment // the list i indexes
	i    int
	page uint64 // the page of the item read last (or of the start)
	next uint64 // the sequence expected next in that page
}

// place turns the ring sequence of an item just read into its page and
// sequence, and counts the items of its page lost just before it. It
// returns false for an item too old to have a segment: the reader skips it
// as lapped, and the next item it reads counts it as missed.
func (r *fedReader) place(f *Feed, seq uint64) (page, sequence, missed uint64, ok bool) {
	p := f.segs.Load()
	if p != r.segs {
		r.segs, r.i = p, 0
	}
	segs := *p
	if seq < segs[0].start {
		return 0, 0, 0, false
	}
	i := r.i
	if segs[i].start > seq {
		i = 0
	}
	for i+1 < len(segs) && segs[i+1].start <= seq {
		i++
	}
	r.i = i
	s := segs[i]
	sequence = seq - s.base
	switch {
	case s.page != r.page:
		missed = sequence - 1
	case sequence > r.next:
		missed = sequence - r.next
	}
	r.page, r.next = s.page, sequence+1
	return s.page, sequence, missed, true
}

// start returns the ring sequence a new subscription of the fed topic starts
// at, given the ring's head, and sets r up for it. ResumeAt follows the rules
// it has for any topic, with the page the feed put last as the current page.
func (r *fedReader) start(f *Feed, cfg subscribeConfig, head uint64) uint64 {
	p := f.segs.Load()
	segs := *p
	r.segs = p
	last := segs[len(segs)-1]
	r.page, r.next = last.page, head+1-last.base
	if !cfg.resume {
		return head + 1
	}
	first := len(segs) - 1
	for first > 0 && segs[first-1].page == last.page {
		first--
	}
	if cfg.resumePage != last.page {
		// The oldest item held of the current page; its Missed counts the
		// items of that page before it.
		r.page, r.next = 0, 0
		return segs[first].start
	}
	want := cfg.resumeSequence
	for i := first; i < len(segs); i++ {
		s := segs[i]
		end := head + 1
		if i+1 < len(segs) {
			end = segs[i+1].start
		}
		switch {
		case want < s.start-s.base:
			// In a gap before this segment: what lies between is lost.
			r.next = want
			return s.start
		case want < end-s.base:
			r.next = want
			return want + s.base
		}
	}
	return head + 1 // beyond the newest item: start after it
}

// errNotValue refuses a typed topic on a sequenced cache.
var errNotValue = errors.New("a sequenced cache carries topics.Value only")
