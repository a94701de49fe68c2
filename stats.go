package topics

import (
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
	"weak"
)

// Statistics.
//
// Every figure is kept by whoever already owns it, so that keeping it costs
// the hot paths (almost) nothing:
//
//   - Published is a topic's ring head: publishing does no extra work.
//   - Delivered and Missed of a subscription are counted by the goroutine
//     reading it in memory of its own, and published for readers of the
//     statistics in batches: whenever the reader has caught up with the
//     topic (the next item is not there yet), with a delivery that reports a
//     loss, and at least every statsEvery items. An atomic store is a full fence
//     on amd64; one per delivered item cost about a third of a delivery (see
//     BENCHMARKS.md), so the figures of a reader that is working
//     through a backlog can trail by up to statsEvery-1 items.
//   - A topic links its open subscriptions in a list, updated on Subscribe and
//     on a subscription's end under a mutex of the topic (never on the publish
//     or delivery path). When a subscription ends its counters are added to
//     the topic's totals; when the idle sweeper drops a topic its totals are
//     added to the cache's.
//
// Lock order: Cache.mu, then topicStats.mu.
//
// Rejected: one counter per topic that every reader adds to. It would be a
// single cache line written by every subscriber of the topic on every
// delivery, which is the contention the broadcast ring exists to avoid.

// SubscriptionStats is a snapshot of one subscription's figures.
//
// Delivered and Missed are a pair the subscription really went through:
// Delivered+Missed is exactly how far its reading had advanced at that point.
// They are exact whenever the reader has caught up with the topic; while it
// works through a backlog they may trail its reading by fewer than 32 items
// (they are published in batches, to keep delivery cheap). Lag is computed
// from the topic's head read after them.
//
// While the subscription is open, Delivered+Missed+Lag is what was published
// to the topic since it started. Once it has ended, Lag is 0 and Unread is
// what it left unread: Delivered+Missed+Unread is what was published while
// it was open. The figures of an ended subscription are final once its
// reader has seen the end (Next returned the error, a range loop over All
// ended, its handler returned), or at once if the reader closed it; until
// then, Delivered may trail by what the reader read last, and Unread
// counts it.
type SubscriptionStats struct {
	Topic     string // the topic's name
	Page      uint64 // the topic instance the subscription reads
	Delivered uint64 // items returned by Next (or given to a handler)
	Missed    uint64 // items lost by falling behind: the sum of Item.Missed so far
	// Lag is how many items published to the topic the subscription has
	// neither received nor been told it missed. Once Lag exceeds the ring
	// size, the excess is certain to be missed. It is 0 once the
	// subscription has ended.
	Lag uint64
	// Unread is how many items published while the subscription was open
	// it had neither received nor been told it missed when it ended: 0 while
	// it is open.
	Unread uint64
}

// TopicStats is a snapshot of one topic's figures.
//
// Published is the topic's head when it was read. Delivered, Missed and
// Unread add up the figures of every subscription the topic has had on this
// page: those still open, each read as a consistent pair (see
// SubscriptionStats), and those that have ended, as they are final. Subscribers is the
// number of open subscriptions included, and MaxLag the largest Lag among
// them. The subscriptions' counters are read one after the other while
// publishing and delivery go on: the figures are never torn and never go
// backwards, but they do not describe one single instant.
type TopicStats struct {
	Name string // the topic's name
	Page uint64 // the topic instance; 0 if the topic does not exist
	// Published counts the sequence numbers handed out on this page, which
	// is the sequence of the newest item. It may count a publish that has
	// not yet returned.
	Published   uint64
	Subscribers int    // open subscriptions
	Delivered   uint64 // items delivered to its subscriptions
	Missed      uint64 // items its subscriptions lost by falling behind
	Unread      uint64 // items its ended subscriptions left unread
	MaxLag      uint64 // the largest Lag of an open subscription
}

// CacheStats is a snapshot of a cache's figures: the sums of its topics'
// TopicStats, and of the topics it has dropped as idle. Each topic is counted
// exactly once, but topics are read one after the other: the sums are not a
// single instant across topics.
type CacheStats struct {
	Name        string // the cache's name
	Topics      int    // topics held now
	Subscribers int    // open subscriptions
	Published   uint64 // items published to its topics, dropped ones included
	Delivered   uint64 // items delivered to its subscriptions
	Missed      uint64 // items its subscriptions lost by falling behind
	Unread      uint64 // items its ended subscriptions left unread
	MaxLag      uint64 // the largest Lag of an open subscription
	Bytes       int64  // payload bytes its Value topics hold (see WithMaxBytes)
}

// hotCounts is the part of a subscription's statistics that its reader
// touches for every item; it lives in the subscription's first cache line
// (see Subscription).
type hotCounts struct {
	d, m uint64 // the reader's own running counts of delivered and missed

	// delivered is d as last published by flush, with publishing set while
	// a new missed count is being published: see counts.
	delivered atomic.Uint64

	lossy    bool // a loss episode is under way (log.go)
	dirty    bool // missed changed: publish with the next delivery
	lossless bool // the subscription has a gate to advance (opt.gate)
	fed      bool // the topic is fed: place items with opt.fed (seam.go)
	ctxEnds  bool // the Subscribe context can end it: look at opt.ctx
	final    bool // the reader has seen the end and made its figures final
}

// publishing marks a published delivered count while missed changes.
const publishing = 1 << 63

// subStats is the rest of a subscription's part in the statistics: what
// readers of the statistics and the topic's list of subscriptions need.
type subStats struct {
	// The hot counts are found from here by their offset (hot), not by a
	// pointer: the 8 bytes went to the ring cursor, to keep a subscription
	// within 128 bytes.
	missed atomic.Uint64 // m as last published by flush
	// start is the first sequence wanted, set before the subscription is
	// shared, and moved only for a fed topic (shiftStart).
	start atomic.Uint64

	// prev and next link the open subscriptions of a topic; under
	// topicStats.mu.
	prev, next *subStats
}

// statsEvery is the most deliveries a reader makes between two flushes.
const statsEvery = 32

// flush publishes the reader's counts. Only the reading goroutine calls it.
// A pair whose missed count has not changed is published with one store:
// the old missed and the new delivered are a pair the reader went through.
// When missed changed, delivered is first republished with the publishing
// bit, then missed, then delivered without the bit: see counts.
func (st *subStats) flush() {
	h := st.hot()
	if h.dirty {
		h.delivered.Store(h.d | publishing)
		st.missed.Store(h.m)
		h.dirty = false
	}
	h.delivered.Store(h.d)
}

// counts returns delivered and missed as a pair the subscription went
// through. It reads delivered, missed and delivered again, and retries
// unless both reads of delivered agree and neither has the publishing bit.
// If they agree, any flush that changed missed in between (and so whose
// missed might have been read) had also stored the same delivered count
// without the bit before the second read; that flush's pair is then the one
// read, and a pair that flush published. Every field is atomic: readers never
// race with the reader's flushes, as a plain seqlock would.
func (st *subStats) counts() (delivered, missed uint64) {
	h := st.hot()
	for {
		if d := h.delivered.Load(); d&publishing == 0 {
			m := st.missed.Load()
			if h.delivered.Load() == d {
				return d, m
			}
		}
		runtime.Gosched() // the reader is mid-flush: a store or two to go
	}
}

// shiftStart keeps lag right for a reader of a fed topic whose cursor moved
// by ringMissed sequences of the ring past items it counts as missed, where
// those sequences stand for missed items of the feed (see fedReader).
// Arithmetic is modulo 2^64. Only the reading goroutine calls it.
func (st *subStats) shiftStart(ringMissed, missed uint64) {
	st.start.Add(ringMissed - missed)
}

// lag returns how far behind head a subscription with these counts is.
func (st *subStats) lag(delivered, missed, head uint64) uint64 {
	// Everything up to the cursor minus one has been read or skipped. The
	// cursor never passes head+1, and head was read after the counters.
	consumed := st.start.Load() + delivered + missed - 1
	if consumed >= head {
		return 0
	}
	return head - consumed
}

// Stats returns a snapshot of the subscription's figures. It is safe to call
// from any goroutine, also after the subscription has ended, and does not
// allocate.
func (s *Subscription[T]) Stats() SubscriptionStats {
	d, m := s.stats.counts()
	out := SubscriptionStats{
		Topic:     s.topic.name,
		Page:      s.topic.currentPage(),
		Delivered: d,
		Missed:    m,
	}
	switch {
	case s.end.Load() != nil:
		out.Unread = s.stats.lag(d, m, s.end.Load().head)
	case s.topic.cache.end.Load() != nil:
		out.Unread = s.stats.lag(d, m, s.topic.endHead.Load())
	default:
		out.Lag = s.stats.lag(d, m, s.topic.ring.Head())
	}
	return out
}

// topicStats is a topic's part in the statistics.
type topicStats struct {
	mu   sync.Mutex
	subs *subStats // open subscriptions, but for lossless ones
	// Open lossless subscriptions, held weakly so that one dropped without
	// Close can be collected, and its gate with it (see subscribe).
	lossless map[weak.Pointer[subStats]]struct{}
	// Totals of the subscriptions that have ended.
	delivered, missed, unread uint64
}

// track counts in a new subscription that starts reading at start.
func (m *instanceMeta) track(st *subStats, start uint64) {
	st.start.Store(start)
	ts := &m.stats
	ts.mu.Lock()
	if st.hot().lossless {
		if ts.lossless == nil {
			ts.lossless = make(map[weak.Pointer[subStats]]struct{})
		}
		ts.lossless[weak.Make(st)] = struct{}{}
	} else {
		st.next = ts.subs
		if st.next != nil {
			st.next.prev = st
		}
		ts.subs = st
	}
	ts.mu.Unlock()
	if m.cache.end.Load() != nil {
		// The cache closed meanwhile, and its retireSubscriptions may have
		// run before st was counted in.
		m.untrack(st, m.endHead.Load())
	}
}

// untrack counts out a subscription that has ended with the topic's head
// at head, and adds its figures to the topic's totals. A reader that reads
// on as it ends makes its figures final later (finalStats).
func (m *instanceMeta) untrack(st *subStats, head uint64) {
	ts := &m.stats
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if !ts.remove(st) {
		return
	}
	d, mi := st.counts()
	ts.delivered += d
	ts.missed += mi
	ts.unread += st.lag(d, mi, head)
}

// remove takes st out of the open subscriptions, and reports whether it was
// there. ts.mu must be held.
func (ts *topicStats) remove(st *subStats) bool {
	if st.hot().lossless {
		k := weak.Make(st)
		if _, ok := ts.lossless[k]; !ok {
			return false
		}
		delete(ts.lossless, k)
		return true
	}
	if st.prev == nil && ts.subs != st {
		return false
	}
	if st.prev != nil {
		st.prev.next = st.next
	} else {
		ts.subs = st.next
	}
	if st.next != nil {
		st.next.prev = st.prev
	}
	st.prev, st.next = nil, nil
	return true
}

// untrackWeak forgets a lossless subscription that was collected without
// having ended.
func (m *instanceMeta) untrackWeak(k weak.Pointer[subStats]) {
	ts := &m.stats
	ts.mu.Lock()
	delete(ts.lossless, k)
	ts.mu.Unlock()
}

// finalStats publishes the final figures of a subscription whose reader has
// seen its end, and moves what the reader read since its end was counted
// from the topic's unread total to its delivered and missed ones.
func (m *instanceMeta) finalStats(st *subStats) {
	ts := &m.stats
	ts.mu.Lock()
	defer ts.mu.Unlock()
	d0, m0 := st.counts()
	st.flush()
	if ts.has(st) {
		return // still counted in: its end will count these figures
	}
	d, mi := st.counts()
	ts.delivered += d - d0
	ts.missed += mi - m0
	ts.unread -= min(ts.unread, d-d0+mi-m0)
}

// has reports whether st is among the open subscriptions. ts.mu must be
// held.
func (ts *topicStats) has(st *subStats) bool {
	if st.hot().lossless {
		_, ok := ts.lossless[weak.Make(st)]
		return ok
	}
	return st.prev != nil || ts.subs == st
}

// eachOpen calls f for every open subscription. ts.mu must be held.
func (ts *topicStats) eachOpen(f func(*subStats)) {
	for st := ts.subs; st != nil; st = st.next {
		f(st)
	}
	for k := range ts.lossless {
		if st := k.Value(); st != nil {
			f(st)
		}
	}
}

// statsOf returns the figures of a topic.
func statsOf(t anyInstance) TopicStats {
	m := t.meta()
	ts := &m.stats
	out := TopicStats{Name: m.name, Page: m.currentPage()}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out.Delivered, out.Missed, out.Unread = ts.delivered, ts.missed, ts.unread
	var minCursor *subStats
	var minD, minM uint64
	ts.eachOpen(func(st *subStats) {
		d, mi := st.counts()
		out.Delivered += d
		out.Missed += mi
		out.Subscribers++
		if minCursor == nil || st.start.Load()+d+mi < minCursor.start.Load()+minD+minM {
			minCursor, minD, minM = st, d, mi
		}
	})
	// Read after every counter, so that no lag comes out negative.
	head := t.head()
	out.Published = m.published(head)
	if minCursor != nil {
		out.MaxLag = minCursor.lag(minD, minM, head)
	}
	return out
}

// Stats returns a snapshot of the topic's figures. A topic that does not
// exist (not yet used, or dropped as idle) has zero figures and Page 0. It is
// safe for concurrent use; its cost grows with the topic's open
// subscriptions.
func (h *Topic[T]) Stats() TopicStats {
	if v, ok := h.cache.topics.Load(h.name); ok {
		return statsOf(v)
	}
	return TopicStats{Name: h.name}
}

// TopicStats returns a snapshot of the named topic's figures, and whether
// the topic exists. It works whatever type the topic carries.
func (c *Cache) TopicStats(name string) (TopicStats, bool) {
	if v, ok := c.topics.Load(name); ok {
		return statsOf(v), true
	}
	return TopicStats{Name: name}, false
}

// AllTopicStats returns a snapshot of the figures of every topic the cache
// holds, sorted by name.
func (c *Cache) AllTopicStats() []TopicStats {
	var out []TopicStats
	c.topics.Range(func(_ string, v anyInstance) bool {
		out = append(out, statsOf(v))
		return true
	})
	slices.SortFunc(out, func(a, b TopicStats) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// droppedStats are the totals of the topics a cache has dropped; under
// Cache.mu.
type droppedStats struct {
	published, delivered, missed, unread uint64
}

// retireTopic adds the totals of a topic being dropped to the cache's.
// c.mu must be held.
func (c *Cache) retireTopic(t anyInstance) {
	s := statsOf(t)
	c.dropped.published += s.Published
	c.dropped.delivered += s.Delivered
	c.dropped.missed += s.Missed
	c.dropped.unread += s.Unread
}

// Stats returns a snapshot of the cache's figures. It is safe for concurrent
// use, does not allocate, and can be called often: it reads each topic's
// figures and each open subscription's counters once, holding the lock that
// topic creation and the idle sweeper take (publishing, subscribing to
// existing topics and delivery never wait for it).
func (c *Cache) Stats() CacheStats {
	out := CacheStats{Name: c.name}
	c.mu.Lock()
	defer c.mu.Unlock()
	out.Published = c.dropped.published
	out.Delivered = c.dropped.delivered
	out.Missed = c.dropped.missed
	out.Unread = c.dropped.unread
	out.Bytes = c.bytes.Load()
	c.topics.Range(func(_ string, v anyInstance) bool {
		s := statsOf(v)
		out.Topics++
		out.Subscribers += s.Subscribers
		out.Published += s.Published
		out.Delivered += s.Delivered
		out.Missed += s.Missed
		out.Unread += s.Unread
		out.MaxLag = max(out.MaxLag, s.MaxLag)
		return true
	})
	return out
}

// Stats returns a snapshot of the figures of every cache of the engine,
// sorted by name. Each cache's figures are consistent as CacheStats says;
// caches are read one after the other.
func (e *Engine) Stats() []CacheStats {
	caches := e.sortedCaches()
	out := make([]CacheStats, len(caches))
	for i, c := range caches {
		out[i] = c.Stats()
	}
	return out
}

func (e *Engine) sortedCaches() []*Cache {
	e.mu.RLock()
	caches := make([]*Cache, 0, len(e.caches))
	for _, c := range e.caches {
		caches = append(caches, c)
	}
	e.mu.RUnlock()
	slices.SortFunc(caches, func(a, b *Cache) int { return strings.Compare(a.name, b.name) })
	return caches
}

// retireSubscriptions unlinks every subscription of a cache that has just
// closed: they have all ended, and the cache, which its user may keep, must
// not keep them reachable.
func (c *Cache) retireSubscriptions() {
	c.topics.Range(func(_ string, v anyInstance) bool {
		m := v.meta()
		head := m.endHead.Load()
		ts := &m.stats
		ts.mu.Lock()
		var open []*subStats
		ts.eachOpen(func(st *subStats) { open = append(open, st) })
		for _, st := range open {
			ts.remove(st)
			d, mi := st.counts()
			ts.delivered += d
			ts.missed += mi
			ts.unread += st.lag(d, mi, head)
		}
		clear(ts.lossless)
		ts.mu.Unlock()
		return true
	})
}

// hotFromStats is the offset of a subscription's hot counts from its
// statistics' view; it does not depend on the subscription's type parameter.
var hotFromStats = int(unsafe.Offsetof(Subscription[struct{}]{}.hot)) - int(unsafe.Offsetof(Subscription[struct{}]{}.stats))

// hot returns the hot counts of the subscription st belongs to. Every
// subStats is the stats field of a Subscription, and the offset does not
// depend on the type parameter (TestSubStatsHotLayout).
func (st *subStats) hot() *hotCounts {
	return (*hotCounts)(unsafe.Add(unsafe.Pointer(st), hotFromStats))
}
