// Package ring is the broadcast ring at the heart of every topic.
//
// # Contract
//
// A Ring holds the newest Size entries published to one topic. Any number of
// goroutines may publish at once (multi-producer). Any number of readers may
// read at once, each with its own cursor that it alone owns (broadcast: every
// reader sees every entry, nobody consumes one). Readers write nothing shared
// while reading; the only shared state a reader writes is the waiter stack, and
// only when it has nothing to read and parks.
//
// A publish claims a sequence number with one atomic add on head and stores a
// pointer to an immutable [Entry] in slot seq&mask. Entries are never modified
// after they are stored, so a reader that loads a slot sees a whole entry or an
// older whole entry, never a torn one.
//
// # Reading a slot
//
// A reader that wants sequence n loads slot n&mask and compares the entry's
// sequence with n:
//
//   - equal: it is the entry wanted;
//   - lower (or no entry): n is not written yet; the reader waits;
//   - higher: the ring has lapped the reader. The slot holds n+k*Size for some
//     k ≥ 1, so every sequence up to entry.Seq-Size is gone; the reader moves
//     its target to entry.Seq-Size+1 and looks again. The distance it moved is
//     exactly what it missed, because sequence numbers have no gaps.
//
// # The slow publisher
//
// A publisher may claim n and be descheduled before it stores. Meanwhile a
// faster publisher may claim n+Size and store it into the same slot. When the
// slow one wakes, a plain store would replace the newer entry with an older one
// and readers would see sequence numbers go backwards. So the store is a
// compare-and-swap that only ever replaces an entry with a lower sequence: a
// publisher that finds a higher sequence in its slot drops its entry, which was
// lapped before anyone could read it; readers count it as missed like any other
// lapped entry. Slot contents therefore only grow, which is what the reading
// rule above relies on. A reader waiting for n while n's publisher is stalled
// is released either by that publisher's store or, if n is lapped first, by the
// store of n+k*Size that it then sees as "higher".
//
// # Memory ordering
//
// Go's atomic operations are sequentially consistent ("the Go memory model":
// all atomic operations behave as if executed in some single total order
// consistent with each goroutine's program order, and an atomic write
// synchronizes before any atomic read that observes it).
//
//   - Entry contents are written before the pointer is stored by CAS and read
//     after the pointer is loaded, so a reader that observes the pointer
//     observes the whole entry.
//   - Parking is a Dekker-style handshake. A reader pushes itself onto the
//     waiter stack (an atomic CAS) and then loads its slot again; a publisher
//     stores its entry (an atomic CAS) and then loads the waiter stack. In the
//     single total order either the reader's second load comes after the
//     publisher's store, and the reader sees the entry and does not sleep, or
//     the publisher's load comes after the reader's push, and the publisher
//     (or an earlier one that took the stack) wakes the reader. No wake-up is
//     lost.
//   - A publisher that finds the stack empty touches no channel and no lock:
//     the cost of waking is paid only while somebody sleeps.
//
// # The waiter stack
//
// Parked readers form a Treiber stack of [Waiter] nodes embedded in the readers
// themselves, so parking allocates nothing. Nodes are pushed one at a time but
// only ever removed all at once, by an atomic swap with nil; without single
// pops the stack is free of the ABA problem. A node carries a "queued" flag so
// that a reader that stopped waiting early (its context ended) and parks again
// is not pushed twice. The waker reads a node's next pointer before clearing
// its flag, so the reader may push it again at once; and it sends the wake-up
// token after clearing the flag, so a reader that saw the flag still set and
// did not push itself is woken by that token. Each node has a channel with
// room for one token: a token that arrives while the reader is busy stays
// there and costs it one extra look at its slot.
package ring

import "sync/atomic"

// CacheLineSize is the size of the padding that keeps hot, independently
// written words apart. 64 bytes is the line size of current x86-64 and most
// arm64 cores; padding to it stops publishers (writing head) and parking
// readers (writing the waiter stack) from invalidating each other's lines.
const CacheLineSize = 64

// MaxSize is the largest ring size accepted by New.
const MaxSize = 1 << 24

// An Entry is one published item. It is immutable once stored in a ring.
type Entry[T any] struct {
	Seq       uint64
	Publisher string
	Value     T
}

// A Ring is a broadcast ring of a fixed power-of-two size. Its zero value is
// not usable; create one with New or initialise one in place with Init. A
// Ring must not be copied after first use.
type Ring[T any] struct {
	_ [CacheLineSize]byte
	// head is the highest sequence claimed so far (0: none). Written by every
	// publisher, so it has a line to itself.
	head atomic.Uint64
	_    [CacheLineSize - 8]byte
	// waiters is the stack of parked readers. Written by readers that park and
	// by publishers that wake them; read by every publisher.
	waiters atomic.Pointer[Waiter]
	_       [CacheLineSize - 8]byte
	// Read-only after Init.
	mask  uint64
	slots []atomic.Pointer[Entry[T]]
}

// New returns a ring that holds size entries. size must be a power of two
// between 1 and MaxSize; New panics otherwise (callers validate first).
func New[T any](size int) *Ring[T] {
	r := new(Ring[T])
	r.Init(size)
	return r
}

// Init prepares a zero Ring to hold size entries, like New.
func (r *Ring[T]) Init(size int) {
	if !ValidSize(size) {
		panic("ring: size must be a power of two between 1 and MaxSize")
	}
	r.mask = uint64(size - 1)
	r.slots = make([]atomic.Pointer[Entry[T]], size)
}

// ValidSize reports whether size is a power of two between 1 and MaxSize.
func ValidSize(size int) bool {
	return size >= 1 && size <= MaxSize && size&(size-1) == 0
}

// Size returns the number of entries the ring holds.
func (r *Ring[T]) Size() int { return len(r.slots) }

// Head returns the highest sequence number claimed so far, or 0. An entry
// with that number may still be on its way into its slot.
func (r *Ring[T]) Head() uint64 { return r.head.Load() }

// Publish appends an entry and returns its sequence number. It never blocks
// and takes no lock; when readers are parked it wakes them.
func (r *Ring[T]) Publish(publisher string, v T) uint64 {
	e := &Entry[T]{Publisher: publisher, Value: v}
	// Everything that can be done before claiming is done: the window between
	// claiming a sequence and storing it is the window in which readers of
	// that sequence wait.
	seq := r.head.Add(1)
	e.Seq = seq
	slot := &r.slots[seq&r.mask]
	for {
		old := slot.Load()
		if old != nil && old.Seq > seq {
			// Lapped while descheduled: a newer entry already owns the slot.
			// Dropping ours keeps slot contents increasing; readers count it
			// as missed.
			return seq
		}
		if slot.CompareAndSwap(old, e) {
			break
		}
	}
	if r.waiters.Load() != nil {
		r.WakeAll()
	}
	return seq
}

// Read returns the entry with sequence next or, when the ring has lapped a
// reader at next, the oldest entry after next that it still holds. The caller
// missed exactly e.Seq-next entries. Read returns nil when the entry it would
// return has not been stored yet; the caller should Park and try again.
func (r *Ring[T]) Read(next uint64) *Entry[T] {
	size := r.mask + 1
	for {
		e := r.slots[next&r.mask].Load()
		switch {
		case e == nil || e.Seq < next:
			return nil
		case e.Seq == next:
			return e
		default:
			// e.Seq ≡ next (mod size) and e.Seq > next, so e.Seq ≥ next+size
			// and the new target is past next.
			next = e.Seq - size + 1
		}
	}
}

// A Waiter is a reader's handle for parking on a ring. Its zero value is not
// usable: call Init. A Waiter must not be copied after first use, and must be
// parked on one ring at a time.
type Waiter struct {
	next   *Waiter
	queued atomic.Bool
	c      chan struct{}
}

// Init prepares a Waiter. It allocates the Waiter's one-token channel.
func (w *Waiter) Init() { w.c = make(chan struct{}, 1) }

// C returns the channel on which the waiter receives a token when woken.
func (w *Waiter) C() <-chan struct{} { return w.c }

// Wake leaves a token for the waiter, so that a receive on C returns. It never
// blocks.
func (w *Waiter) Wake() {
	select {
	case w.c <- struct{}{}:
	default: // a token is already waiting
	}
}

// Park puts w on the ring's waiter stack, unless it is still there from an
// earlier Park. After Park the caller must look at its slot again (Read) and
// only then wait on w.C(): see the package doc.
func (r *Ring[T]) Park(w *Waiter) {
	if !w.queued.CompareAndSwap(false, true) {
		return
	}
	for {
		top := r.waiters.Load()
		w.next = top
		if r.waiters.CompareAndSwap(top, w) {
			return
		}
	}
}

// WakeAll wakes every parked reader. Publish calls it when readers are
// parked; owners call it when readers must notice something else (a close).
func (r *Ring[T]) WakeAll() {
	w := r.waiters.Swap(nil)
	for w != nil {
		next := w.next
		w.next = nil
		w.queued.Store(false)
		w.Wake()
		w = next
	}
}
