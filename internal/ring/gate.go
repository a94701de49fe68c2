package ring

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// # Gates
//
// A gate is the cursor of a lossless reader: while a ring has gates, no
// publisher may overwrite an entry that some gated reader has not read. A
// publisher that would have to waits until every gate has passed the entry
// it would overwrite (Disruptor-style gating on the slowest cursor), or
// until its context is done, in which case it returns having claimed
// nothing. Readers without a gate are unaffected and never slow anyone.
//
// Ungated rings pay for this with one bit: head carries a "gated" flag, and
// a publisher that sees it clear claims with a single CAS and never looks at
// the gates. Gated publishers claim with a CAS too, after checking the
// gates, so a claim is refused, not undone, when the ring is full.
//
// Adding a gate must not let through a publisher that checked the gates just
// before the new one was there. AddGate therefore (1) publishes a new gate
// set holding the gate with cursor 0, which holds back every claim that would
// overwrite anything, (2)
// changes head with a CAS, setting the gated flag and flipping a version
// bit, and reads from the same CAS the head at which the reader starts, and
// only then (3) moves the gate's cursor to that start. A publisher loads head
// before it loads the gates and claims with a CAS on the head it loaded; a
// publisher whose gate check came before step 1 loaded head before step 2,
// so its CAS fails and it looks again. Every claim made after step 2 sees the
// gate, and no claim before it can overwrite what the reader starts at.
//
// Waiting publishers park on a stack of their own, like readers do: a
// publisher pushes itself and then checks the gates again; a gated reader
// stores its new cursor and then looks at that stack. As with readers, the
// sequentially consistent atomics make one of the two see the other. A gated
// reader wakes waiting publishers after each item it reads (only when some
// are waiting), and removing a gate wakes them too, so closing a lossless
// reader releases the publishers it held back at once.

// Flags in the low bits of Ring.head.
const (
	gatedFlag   = 1 << 0 // the ring has (or is getting) gates
	versionFlag = 1 << 1 // flipped by AddGate to fail concurrent claims
	headShift   = 2
	headUnit    = 1 << headShift
)

// A Gate is the cursor of one lossless reader. The reader alone advances it.
type Gate struct {
	_      [CacheLineSize]byte
	cursor atomic.Uint64 // every sequence below cursor has been read
	_      [CacheLineSize - 8]byte
	g      *gating
}

// gating is the state of a ring that has had gates.
type gating struct {
	mu      sync.Mutex              // serialises AddGate and RemoveGate
	set     atomic.Pointer[gateSet] // replaced, never modified, by AddGate and RemoveGate
	waiters atomic.Pointer[Waiter]  // parked publishers
	pool    sync.Pool               // of *Waiter for publishers; only ever parked on waiters
}

// A gateSet is the list of gates at one time, with a cache of their lowest
// cursor. The cache belongs to the list it was computed from, so a publisher
// that computed it from an older list can never store it where a newer gate
// is missing from it.
type gateSet struct {
	gates []*Gate
	min   atomic.Uint64 // at most the cursor of every gate in gates
}

func (r *Ring[T]) getGating() *gating {
	if g := r.gating.Load(); g != nil {
		return g
	}
	g := &gating{}
	g.pool.New = func() any {
		w := new(Waiter)
		w.Init()
		return w
	}
	r.gating.CompareAndSwap(nil, g)
	return r.gating.Load()
}

// AddGate adds a gate for a reader that starts at start(head), where head is
// the sequence claimed last when the gate took effect. It returns the gate
// and the start. From then on no publisher overwrites an entry at or after
// the gate's cursor; the cursor starts at the start or, if that entry is no
// longer held, at the oldest entry that is.
func (r *Ring[T]) AddGate(start func(head uint64) uint64) (*Gate, uint64) {
	g := r.getGating()
	g.mu.Lock()
	defer g.mu.Unlock()

	gate := &Gate{g: g}
	set := &gateSet{}
	if old := g.set.Load(); old != nil {
		set.gates = slices.Clone(old.gates)
	}
	set.gates = append(set.gates, gate)
	g.set.Store(set)

	var h uint64
	for {
		h = r.head.Load()
		if r.head.CompareAndSwap(h, (h|gatedFlag)^versionFlag) {
			break
		}
	}
	head := h >> headShift
	first := start(head)
	oldest := uint64(1)
	if size := r.mask + 1; head > size {
		oldest = head - size + 1
	}
	gate.cursor.Store(max(first, oldest))
	wakeAll(&g.waiters) // publishers held back by cursor 0
	return gate, first
}

// RemoveGate removes a gate and releases the publishers it held back. It is
// idempotent.
func (r *Ring[T]) RemoveGate(gate *Gate) {
	r.removeGates(gate.g, func(list []*Gate) []*Gate {
		if i := slices.Index(list, gate); i >= 0 {
			return slices.Delete(slices.Clone(list), i, i+1)
		}
		return list
	})
}

// RemoveGates removes every gate, for a ring nobody will read any more, and
// releases every waiting publisher.
func (r *Ring[T]) RemoveGates() {
	if g := r.gating.Load(); g != nil {
		r.removeGates(g, func([]*Gate) []*Gate { return nil })
	}
}

// removeGates replaces the gate list with edit(list) and, if that leaves no
// gate, clears the gated flag; then it wakes waiting publishers.
func (r *Ring[T]) removeGates(g *gating, edit func([]*Gate) []*Gate) {
	g.mu.Lock()
	old := g.set.Load().gates
	list := edit(old)
	if len(list) == len(old) {
		g.mu.Unlock()
		return
	}
	g.set.Store(&gateSet{gates: list})
	if len(list) == 0 {
		for {
			h := r.head.Load()
			if r.head.CompareAndSwap(h, h&^gatedFlag) {
				break
			}
		}
	}
	g.mu.Unlock()
	wakeAll(&g.waiters)
}

// Advance records that the gate's reader has read every sequence below
// next, and wakes publishers waiting for that.
func (gate *Gate) Advance(next uint64) {
	gate.cursor.Store(next)
	if gate.g.waiters.Load() != nil {
		wakeAll(&gate.g.waiters)
	}
}

// open reports whether every gate has passed sequence seq, so that it may be
// overwritten.
func (g *gating) open(seq uint64) bool {
	set := g.set.Load()
	if seq < set.min.Load() {
		return true
	}
	m := uint64(math.MaxUint64)
	for _, gate := range set.gates {
		m = min(m, gate.cursor.Load())
	}
	// Cursors only grow, so m stays a lower bound for this set's gates; a
	// concurrent store of an older m only costs a later caller a rescan.
	set.min.Store(m)
	return seq < m
}

// claimGated claims the next sequence number on a ring that is, or was just,
// gated, waiting for the gates to open if need be.
func (r *Ring[T]) claimGated(ctx context.Context) (uint64, error) {
	size := r.mask + 1
	var w *Waiter
	defer func() {
		if w != nil {
			r.gating.Load().pool.Put(w)
		}
	}()
	for {
		h := r.head.Load()
		seq := h>>headShift + 1
		if h&gatedFlag != 0 && seq > size {
			g := r.gating.Load()
			if !g.open(seq - size) {
				if w == nil {
					w = g.pool.Get().(*Waiter)
				}
				push(&g.waiters, w)
				if g.open(seq - size) {
					continue
				}
				select {
				case <-w.C():
				case <-ctx.Done():
					return 0, ctx.Err()
				}
				continue
			}
		}
		if r.head.CompareAndSwap(h, h+headUnit) {
			return seq, nil
		}
	}
}

// Holding returns how many gates hold back the next publish: those whose
// reader has not read the entry it would overwrite.
func (r *Ring[T]) Holding() int {
	g := r.gating.Load()
	if g == nil {
		return 0
	}
	set := g.set.Load()
	seq, size := r.Head()+1, r.mask+1
	if set == nil || seq <= size {
		return 0
	}
	n := 0
	for _, gate := range set.gates {
		if gate.cursor.Load() <= seq-size {
			n++
		}
	}
	return n
}
