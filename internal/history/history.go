// Package history checks what a run of the engine did against its
// guarantees. Scenarios record every publish and every item every subscriber
// receives with a Recorder, stamped with ticks of one shared atomic counter,
// and Check then verifies order, exact loss, causality and the rest of the
// guarantees in the package doc of topics against the record. The checker
// is itself tested with hand-made bad histories (history_test.go): a checker
// that cannot fail proves nothing.
//
// It is test machinery of this module, shared by the stress tests of the
// engine and of the packages that build on it.
package history

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ringbus/topics"
)

// Payloads carry their own identity and checksum, so that a torn, mixed-up
// or invented item is visible:
//
//	[0:4]    publisher id, little endian
//	[4:12]   the publisher's counter (1, 2, 3, …), little endian
//	[12:n-8] filler derived from both
//	[n-8:n]  FNV-1a 64 of bytes [0:n-8]
const PayloadMin = 20

// EncodePayload fills b (at least PayloadMin bytes) with the payload of the
// publisher's counter-th publish.
func EncodePayload(b []byte, publisher uint32, counter uint64) {
	n := len(b)
	binary.LittleEndian.PutUint32(b[0:4], publisher)
	binary.LittleEndian.PutUint64(b[4:12], counter)
	seed := byte(counter) ^ byte(counter>>8) ^ byte(publisher)*7
	for i := 12; i < n-8; i++ {
		b[i] = seed + byte(i)*131
	}
	binary.LittleEndian.PutUint64(b[n-8:], FNV64a(b[:n-8]))
}

// DecodePayload returns the identity in a payload, and whether its checksum
// holds.
func DecodePayload(b []byte) (publisher uint32, counter uint64, ok bool) {
	n := len(b)
	if n < PayloadMin {
		return 0, 0, false
	}
	if binary.LittleEndian.Uint64(b[n-8:]) != FNV64a(b[:n-8]) {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint64(b[4:12]), true
}

func FNV64a(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// pubKey names one publish: the publisher and its counter.
type pubKey struct {
	publisher uint32
	counter   uint64
}

func (k pubKey) String() string { return fmt.Sprintf("p%d#%d", k.publisher, k.counter) }

// A PubEvent is one call to Publish. Call is a tick taken just before the
// call, Return one taken just after it returned.
type PubEvent struct {
	Topic        string
	Publisher    uint32
	Counter      uint64
	Call, Return uint64
	Failed       bool // Publish returned an error
}

func (p *PubEvent) key() pubKey { return pubKey{p.Publisher, p.Counter} }

// A RecvEvent is one item a subscription received. Tick is taken just after
// Next returned it.
type RecvEvent struct {
	Seq, Page, Missed uint64
	Tick              uint64
	Value             []byte
}

// A SubHistory is one subscription's record.
type SubHistory struct {
	Name                 string // for messages
	Topic                string
	OpenCall, OpenReturn uint64 // ticks around Subscribe
	CloseCall            uint64 // tick just before Close was called; 0 if never
	Items                []RecvEvent

	// What the scenario guarantees, for the checker to verify.
	KeepsUp   bool // it is never more than RingSize items behind: it may lose nothing
	ReadToEnd bool // it read until the last item published to its topic
}

// A history is everything a scenario did. Topics are assumed to keep one
// page throughout (no topic is dropped and re-created).
type History struct {
	RingSize int // the topics' ring size; 0 if unknown (skips the lapping check)
	Pubs     []PubEvent
	Subs     []*SubHistory
}

// Kinds of violation the checker reports.
const (
	ViolHistory        = "malformed history"
	ViolTorn           = "torn item"
	ViolPhantom        = "phantom item"
	ViolFailedDeliver  = "failed publish delivered"
	ViolCausality      = "delivered before published"
	ViolAfterClose     = "delivered after Close"
	ViolPage           = "page changed"
	ViolNeverClaimed   = "sequence never claimed"
	ViolDuplicate      = "duplicate"
	ViolNotIncreasing  = "sequence not increasing"
	ViolMissed         = "wrong Missed"
	ViolDiverge        = "subscribers disagree"
	ViolWindow         = "wrong start"
	ViolKeptUpLoss     = "loss while keeping up"
	ViolSpuriousLoss   = "loss without lapping"
	ViolTail           = "tail not delivered"
	ViolPublisherOrder = "publisher order broken"
	ViolRealTime       = "real-time order broken"
)

// A violation is one broken guarantee found in a history.
type violation struct {
	Kind string
	Msg  string
}

func (v violation) String() string { return v.Kind + ": " + v.Msg }

// A Report collects violations, keeping the first few of each kind.
type Report struct {
	counts map[string]int
	kept   []violation
}

const keepPerKind = 8

func (r *Report) add(kind, format string, args ...any) {
	if r.counts == nil {
		r.counts = make(map[string]int)
	}
	r.counts[kind]++
	if r.counts[kind] <= keepPerKind {
		r.kept = append(r.kept, violation{kind, fmt.Sprintf(format, args...)})
	}
}

// Has reports whether a violation of that kind was found.
func (r *Report) Has(kind string) bool { return r.counts[kind] > 0 }

// OK reports whether no violation was found.
func (r *Report) OK() bool { return len(r.counts) == 0 }

func (r *Report) String() string {
	if r.OK() {
		return "no violations"
	}
	var b strings.Builder
	kinds := slices.Sorted(func(yield func(string) bool) {
		for k := range r.counts {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range kinds {
		fmt.Fprintf(&b, "%d × %s\n", r.counts[k], k)
	}
	for _, v := range r.kept {
		fmt.Fprintf(&b, "  %s\n", v)
	}
	return b.String()
}

// topicState is what the checker learns about one topic.
type topicState struct {
	successes int      // publishes that returned nil: the sequences claimed
	calls     []uint64 // Call ticks of those publishes, sorted
	bySeq     []pubKey // bySeq[seq]: the publish delivered at seq; zero if none seen
	page      uint64   // the page of the first item seen
	pageSeen  bool
}

// claimedBefore returns how many successful publishes were called before
// tick: an upper bound on the sequences claimed by then.
func (ts *topicState) claimedBefore(tick uint64) int {
	return sort.Search(len(ts.calls), func(i int) bool { return ts.calls[i] >= tick })
}

// Check verifies every guarantee it can on h and reports what is broken.
func (h *History) Check() *Report {
	r := &Report{}
	pubs := make(map[pubKey]*PubEvent, len(h.Pubs))
	topicsOf := make(map[string]*topicState)
	state := func(name string) *topicState {
		ts := topicsOf[name]
		if ts == nil {
			ts = &topicState{}
			topicsOf[name] = ts
		}
		return ts
	}
	for i := range h.Pubs {
		p := &h.Pubs[i]
		if _, dup := pubs[p.key()]; dup {
			r.add(ViolHistory, "publish %v recorded twice", p.key())
			continue
		}
		if p.Return <= p.Call {
			r.add(ViolHistory, "publish %v returned at tick %d, before its call at %d", p.key(), p.Return, p.Call)
		}
		pubs[p.key()] = p
		ts := state(p.Topic)
		if !p.Failed {
			ts.successes++
			ts.calls = append(ts.calls, p.Call)
		}
	}
	for _, ts := range topicsOf {
		slices.Sort(ts.calls)
		ts.bySeq = make([]pubKey, ts.successes+1)
	}
	seqOf := make(map[pubKey]uint64)

	// Each subscription on its own, and the sequence → publish mapping that
	// all of them must agree on.
	for _, s := range h.Subs {
		ts := state(s.Topic)
		var prev uint64
		var delivered, missed uint64
		for i, it := range s.Items {
			where := fmt.Sprintf("%s item %d (sequence %d)", s.Name, i, it.Seq)
			// The item itself.
			pub, counter, whole := DecodePayload(it.Value)
			key := pubKey{pub, counter}
			var p *PubEvent
			switch {
			case !whole:
				r.add(ViolTorn, "%s: payload of %d bytes fails its checksum", where, len(it.Value))
			default:
				p = pubs[key]
				switch {
				case p == nil:
					r.add(ViolPhantom, "%s: carries %v, which was never published", where, key)
				case p.Topic != s.Topic:
					r.add(ViolPhantom, "%s: carries %v, published to topic %q", where, key, p.Topic)
					p = nil
				case p.Failed:
					r.add(ViolFailedDeliver, "%s: carries %v, whose Publish returned an error", where, key)
				}
				if p != nil && it.Tick <= p.Call {
					r.add(ViolCausality, "%s: received at tick %d, publish %v called at %d", where, it.Tick, key, p.Call)
				}
			}
			if s.CloseCall != 0 && it.Tick > s.CloseCall {
				r.add(ViolAfterClose, "%s: received at tick %d, Close was called at %d", where, it.Tick, s.CloseCall)
			}
			if !ts.pageSeen {
				ts.page, ts.pageSeen = it.Page, true
			} else if it.Page != ts.page {
				r.add(ViolPage, "%s: page %d, the topic's page was %d", where, it.Page, ts.page)
			}
			if it.Seq == 0 || it.Seq > uint64(ts.successes) {
				r.add(ViolNeverClaimed, "%s: only %d publishes to %q succeeded", where, ts.successes, s.Topic)
			}

			// Its place in the subscription's sequence.
			if i > 0 {
				switch {
				case it.Seq == prev:
					r.add(ViolDuplicate, "%s: sequence %d delivered twice in a row", where, it.Seq)
				case it.Seq < prev:
					r.add(ViolNotIncreasing, "%s: after sequence %d", where, prev)
				case it.Missed != it.Seq-prev-1:
					r.add(ViolMissed, "%s: Missed %d after sequence %d, want %d", where, it.Missed, prev, it.Seq-prev-1)
				}
			} else if it.Missed >= it.Seq {
				r.add(ViolMissed, "%s: Missed %d, but only %d sequences come before it", where, it.Missed, it.Seq-1)
			}
			if it.Missed > 0 {
				if s.KeepsUp {
					r.add(ViolKeptUpLoss, "%s: Missed %d, though the subscription kept up", where, it.Missed)
				}
				// Sequence Seq-1 was lost: the ring overwrote it with
				// Seq-1+RingSize, whose publish was called before Next
				// returned.
				if h.RingSize > 0 {
					need := it.Seq - 1 + uint64(h.RingSize)
					if got := uint64(ts.claimedBefore(it.Tick)); got < need {
						r.add(ViolSpuriousLoss, "%s: Missed %d, but only %d publishes had started when it was delivered; losing %d takes %d with ring size %d",
							where, it.Missed, got, it.Seq-1, need, h.RingSize)
					}
				}
			}
			delivered++
			missed += it.Missed
			prev = max(prev, it.Seq)

			// One order per topic.
			if p != nil && it.Seq > 0 && it.Seq <= uint64(ts.successes) {
				switch old := ts.bySeq[it.Seq]; {
				case old == (pubKey{}):
					ts.bySeq[it.Seq] = key
				case old != key:
					r.add(ViolDiverge, "%s: carries %v, another subscriber received %v at that sequence", where, key, old)
				}
				if seq, seen := seqOf[key]; !seen {
					seqOf[key] = it.Seq
				} else if seq != it.Seq {
					r.add(ViolDuplicate, "%s: %v was also delivered at sequence %d", where, key, seq)
				}
			}
		}

		// Loss is exact: delivered plus missed covers every sequence from the
		// first one the subscription wanted to the last it received.
		if n := len(s.Items); n > 0 {
			first, last := s.Items[0], s.Items[n-1]
			start := first.Seq - first.Missed // the first sequence it wanted
			if window := last.Seq - start + 1; last.Seq >= start && delivered+missed != window {
				r.add(ViolMissed, "%s: delivered %d + missed %d = %d, but sequences %d..%d are %d",
					s.Name, delivered, missed, delivered+missed, start, last.Seq, window)
			}
			if s.ReadToEnd && last.Seq != uint64(ts.successes) {
				r.add(ViolTail, "%s: last item %d, but %d publishes to %q succeeded", s.Name, last.Seq, ts.successes, s.Topic)
			}
		} else if s.ReadToEnd && ts.claimedBefore(^uint64(0))-ts.claimedBefore(s.OpenReturn+1) > 0 {
			r.add(ViolTail, "%s: received nothing, but publishes to %q started after it subscribed", s.Name, s.Topic)
		}
	}

	// The start of each subscription: Subscribe reads the newest sequence
	// claimed, h0, and starts at h0+1. So h0 is at least every sequence
	// whose publish returned before Subscribe was called, and at most the
	// number of publishes called before Subscribe returned.
	for name, ts := range topicsOf {
		known := knownPublishes(pubs, name, seqOf)
		byReturn := slices.Clone(known)
		slices.SortFunc(byReturn, func(a, b knownPub) int { return cmp.Compare(a.p.Return, b.p.Return) })
		prefixMax := make([]uint64, len(byReturn))
		for i, k := range byReturn {
			prefixMax[i] = k.seq
			if i > 0 {
				prefixMax[i] = max(prefixMax[i], prefixMax[i-1])
			}
		}
		for _, s := range h.Subs {
			if s.Topic != name || len(s.Items) == 0 {
				continue
			}
			first := s.Items[0]
			if first.Missed >= first.Seq {
				continue // reported above
			}
			h0 := first.Seq - first.Missed - 1
			i := sort.Search(len(byReturn), func(i int) bool { return byReturn[i].p.Return >= s.OpenCall })
			if i > 0 && h0 < prefixMax[i-1] {
				r.add(ViolWindow, "%s: starts at %d, but sequence %d was published before Subscribe was called", s.Name, h0+1, prefixMax[i-1])
			}
			if limit := uint64(ts.claimedBefore(s.OpenReturn)); h0 > limit {
				r.add(ViolWindow, "%s: starts at %d, but only %d publishes had started when Subscribe returned", s.Name, h0+1, limit)
			}
		}

		// Each publisher's order, and real-time order.
		slices.SortFunc(known, func(a, b knownPub) int {
			return cmp.Or(cmp.Compare(a.p.Publisher, b.p.Publisher), cmp.Compare(a.p.Counter, b.p.Counter))
		})
		for i := 1; i < len(known); i++ {
			a, b := known[i-1], known[i]
			if a.p.Publisher == b.p.Publisher && a.seq >= b.seq {
				r.add(ViolPublisherOrder, "topic %q: %v has sequence %d, the later %v %d", name, a.p.key(), a.seq, b.p.key(), b.seq)
			}
		}
		// Walking down the sequences, no publish may have been called after
		// one with a higher sequence had returned.
		slices.SortFunc(known, func(a, b knownPub) int { return cmp.Compare(b.seq, a.seq) })
		var earliest *knownPub // of the higher sequences, the one that returned first
		for i := range known {
			k := &known[i]
			if earliest != nil && earliest.p.Return < k.p.Call {
				r.add(ViolRealTime, "topic %q: %v returned at tick %d with sequence %d; %v, called later at %d, has the lower %d",
					name, earliest.p.key(), earliest.p.Return, earliest.seq, k.p.key(), k.p.Call, k.seq)
			}
			if earliest == nil || k.p.Return < earliest.p.Return {
				earliest = k
			}
		}
	}
	return r
}

// A knownPub is a publish whose sequence some subscriber saw.
type knownPub struct {
	p   *PubEvent
	seq uint64
}

func knownPublishes(pubs map[pubKey]*PubEvent, topic string, seqOf map[pubKey]uint64) []knownPub {
	var known []knownPub
	for _, p := range pubs {
		if p.Topic != topic {
			continue
		}
		if seq, ok := seqOf[p.key()]; ok {
			known = append(known, knownPub{p, seq})
		}
	}
	return known
}

// Require fails the test if h breaks a guarantee.
func Require(t testing.TB, h *History) {
	t.Helper()
	if r := h.Check(); !r.OK() {
		t.Fatalf("history of %d publishes and %d subscriptions breaks guarantees:\n%s", len(h.Pubs), len(h.Subs), r)
	}
}

// A Recorder records a history as a scenario runs. Each publisher and each
// subscription records into its own log, so recording takes no lock; only
// the shared clock is contended.
type Recorder struct {
	clock    atomic.Uint64
	ringSize int

	mu   sync.Mutex
	pubs []*PubRecorder
	subs []*SubRecorder
}

func NewRecorder(ringSize int) *Recorder { return &Recorder{ringSize: ringSize} }

func (r *Recorder) tick() uint64 { return r.clock.Add(1) }

// History gathers the logs. Call it once every recording goroutine is done.
func (r *Recorder) History() *History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := &History{RingSize: r.ringSize}
	for _, p := range r.pubs {
		h.Pubs = append(h.Pubs, p.events...)
	}
	for _, s := range r.subs {
		h.Subs = append(h.Subs, &s.H)
	}
	return h
}

// A PubRecorder publishes as one publisher and records what it does. It is
// used by one goroutine.
type PubRecorder struct {
	r       *Recorder
	id      uint32
	counter uint64
	buf     []byte
	events  []PubEvent
}

// Publisher returns a new publisher, with an ID of its own.
func (r *Recorder) Publisher() *PubRecorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &PubRecorder{r: r, id: uint32(len(r.pubs) + 1)}
	r.pubs = append(r.pubs, p)
	return p
}

// Publish publishes the publisher's next payload, of size bytes, to topic.
// It reuses one buffer for every payload: Publish must have copied it.
// ID returns the publisher's ID, which its payloads carry.
func (p *PubRecorder) ID() uint32 { return p.id }

func (p *PubRecorder) Publish(ctx context.Context, c *topics.Cache, topic string, size int) error {
	p.counter++
	if cap(p.buf) < size {
		p.buf = make([]byte, size)
	}
	b := p.buf[:size]
	EncodePayload(b, p.id, p.counter)
	call := p.r.tick()
	err := c.Publish(ctx, topic, b)
	ret := p.r.tick()
	p.events = append(p.events, PubEvent{Topic: topic, Publisher: p.id, Counter: p.counter, Call: call, Return: ret, Failed: err != nil})
	clear(b) // a publish that kept the slice would now deliver a torn item
	return err
}

// A SubRecorder reads a subscription and records what it receives. It is
// used by one goroutine. Every other subscription reads with NextBatch,
// into a buffer of batchRead items that next hands out one by one, so that
// the checker judges both ways of reading.
type SubRecorder struct {
	r   *Recorder
	sub *topics.Subscription[topics.Value]
	H   SubHistory // what it has recorded

	batch    []topics.Item[topics.Value] // nil: read with Next
	pos, end int                         // batch[pos:end] is read, not yet handed out
}

// batchRead is the buffer of the subRecorders that read with NextBatch:
// small, so that batches are often full and often not.
const batchRead = 5

// Subscribe subscribes and records the subscription. keepsUp and readToEnd
// are what the scenario guarantees of it.
func (r *Recorder) Subscribe(ctx context.Context, c *topics.Cache, topic, name string, keepsUp, readToEnd bool) (*SubRecorder, error) {
	call := r.tick()
	sub, err := c.Subscribe(ctx, topic)
	ret := r.tick()
	if err != nil {
		return nil, err
	}
	s := &SubRecorder{r: r, sub: sub, H: SubHistory{
		Name: name, Topic: topic, OpenCall: call, OpenReturn: ret,
		KeepsUp: keepsUp, ReadToEnd: readToEnd,
	}}
	r.mu.Lock()
	if len(r.subs)%2 == 1 {
		s.batch = make([]topics.Item[topics.Value], batchRead)
	}
	r.subs = append(r.subs, s)
	r.mu.Unlock()
	return s, nil
}

// Next reads and records one item.
func (s *SubRecorder) Next(ctx context.Context) (topics.Item[topics.Value], error) {
	it, err := s.read(ctx)
	if err != nil {
		return it, err
	}
	tick := s.r.tick()
	s.H.Items = append(s.H.Items, RecvEvent{Seq: it.Sequence, Page: it.Page, Missed: it.Missed, Tick: tick, Value: it.Value.Bytes()})
	return it, nil
}

// read returns the next item from the subscription, or from the batch
// read before.
func (s *SubRecorder) read(ctx context.Context) (topics.Item[topics.Value], error) {
	if s.batch == nil {
		return s.sub.Next(ctx)
	}
	if s.pos == s.end {
		n, err := s.sub.NextBatch(ctx, s.batch)
		if err != nil {
			return topics.Item[topics.Value]{}, err
		}
		s.pos, s.end = 0, n
	}
	s.pos++
	return s.batch[s.pos-1], nil
}

// Close closes the subscription and records when it first did.
func (s *SubRecorder) Close() {
	if s.H.CloseCall == 0 {
		s.H.CloseCall = s.r.tick()
	}
	s.sub.Close()
}

// ReadUntil reads until it has received sequence last (or one after it).
func (s *SubRecorder) ReadUntil(ctx context.Context, last uint64) error {
	for {
		it, err := s.Next(ctx)
		if err != nil {
			return fmt.Errorf("%s: after %d items: %w", s.H.Name, len(s.H.Items), err)
		}
		if it.Sequence >= last {
			return nil
		}
	}
}
