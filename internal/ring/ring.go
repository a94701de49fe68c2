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
// A publish claims a sequence number with one compare-and-swap on head and
// stores a pointer to an immutable [Entry] in slot seq&mask. Entries are never modified
// after they are stored, so a reader that loads a slot sees a whole entry or an
// older whole entry, never a torn one.
//
// Lossless readers add a [Gate] (see gate.go): while a ring has gates,
// publishers wait rather than overwrite an entry a gated reader has not read.
// A ring without gates pays one flag test per publish for that.
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
// # Allocation
//
// Entries are not allocated one by one: a publish would then cost a trip
// through the allocator, more than everything else it does. They are carved
// from chunks of up to 32 entries (about 2 KiB) that belong to blocks of
// consecutive sequence numbers, so the entry of sequence n has a fixed place
// in the chunk of block n>>shift. The publisher of n alone writes that place,
// once, before it stores the pointer; no entry is ever reused, so a reader can
// never see one change. The publisher that first needs a block allocates its
// chunk and installs it with a CAS in a small table (a loser of that race uses
// the winner's chunk). A publisher so late that its block's place in the
// table was already taken by a newer block allocates a lone entry; it is
// about to be lapped anyway.
//
// A chunk stays alive while any of its entries is in the ring or its block is
// in the table. The table holds the newest blocks, so as long as the blocks it
// can hold span no more than the ring's size, they all lie within the newest
// Size sequences, and a ring keeps at most one chunk's worth of entries (and
// their payloads) beyond its size: the part of the oldest chunk that the ring
// has already overwritten. Small rings therefore get shorter chunks and a
// smaller table (Init): with 32-entry chunks and four of them in the table, a
// ring of size 1 would keep 128 payloads alive instead of one.
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
//
// # What was measured
//
// Figures from go test -bench on a shared 2-core AMD EPYC virtual machine,
// medians of interleaved runs (README.md, "Performance", has the tables):
//
//   - One allocation per entry cost about 45 ns of an 80 ns typed publish;
//     carving entries from chunks brought it to about 55 ns and no
//     allocation of its own. Bigger chunks do not help: what remains is
//     zeroing and marking pointerful memory, proportional to its size.
//   - Claiming with a CAS rather than an atomic add costs nothing measurable
//     uncontended (3.7 against 2.8 ns here) and is what lets a gated ring
//     refuse a claim instead of undoing one.
//   - A full 1,024-slot array took the allocator's 9,472-byte size class
//     because of its 8-byte header; keeping the last slot beside head saves
//     1,272 bytes per topic for a branch that goes the other way once a lap.
//   - Readers spinning a few dozen loads before parking, and gated readers
//     waking publishers only once they pass what the publishers need, made
//     no difference beyond the noise and were left out.
//   - On the reader's side the costs were outside the ring: an atomic store
//     per item for statistics (a full fence on amd64) and copies of the
//     nine-word Item through the stack (store-forwarding stalls). Both are
//     gone (see the topics package: stats.go, Subscription.deliver).
//   - Entries are what a publish allocates, so their size shows: a Publisher
//     pointer rather than a string and a two-word topics.Value took
//     Entry[Value] from 56 to 32 bytes, Cache.Publish with no subscriber
//     from 132 to 120 ns (benchstat, 12 interleaved runs, p=0.000).
//   - What entry memory still costs was bounded by a deliberately broken
//     ring that reused the chunks in its table: a typed publish went from
//     67 to 41 ns (medians of 7). Reusing entries safely needs a way to
//     know that no reader and no late publisher still holds one: per-chunk
//     reference counts taken by readers once per chunk and validated by
//     reloading the slot, plus a count of unfinished publishes per chunk.
//     That is one more atomic per publish and a contended counter per
//     chunk for every reader, and was not done.
//   - Neither of these made a difference beyond the noise, and both were
//     left out: placing consecutive sequences on different cache lines
//     (in the slots, and among a chunk's entries) so that a reader close
//     behind the publisher does not pull the line it is writing; and
//     deciding in store from head, rather than from the sequence of the
//     entry being replaced (written a lap ago), that the slot holds no
//     newer entry.
//   - With one subscriber, a reader that keeps up parks about once per 220
//     items, not once per item: waking is not where the time goes. Spinning
//     for 300 or 1,000 loads before parking changed nothing. The fan-out
//     with one subscriber runs faster with GOMAXPROCS=1 than with 2 (typed:
//     about 107 against 140 ns per delivery) while the channel baseline does
//     not change. In that benchmark the reader is the busy side: a CPU
//     profile puts three quarters of the samples in the reading goroutine
//     and a sixth in the publisher, which the harness holds back once it is
//     a few batches ahead. A sixth of the reader's samples sit on a single
//     instruction of the caller's copy of the Item that Next returns (a
//     16-byte load of two 8-byte stores just made, which the core cannot
//     forward); the rest is spread thin over Next. Deciding that the reader
//     has caught up (which publishes its statistics) from head instead of
//     from the next slot changed nothing (benchstat, 10 runs, p > 0.35).
//   - Moving Publisher out of the entry, so that the chunks of a pointer-free
//     T hold no pointers and the GC does not scan them, changed nothing
//     either (typed publish, medians of 5 interleaved runs: 55.5 against
//     55.9 ns). What entries cost is the allocation rate, not scanning:
//     GOGC=400 takes the same publish to 39-51 ns, GOGC=off (fresh memory
//     from the OS) to 50-64.
package ring

import (
	"context"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// CacheLineSize is the size of the padding that keeps hot, independently
// written words apart. 64 bytes is the line size of current x86-64 and most
// arm64 cores; padding to it stops publishers (writing head) and parking
// readers (writing the waiter stack) from invalidating each other's lines.
const CacheLineSize = 64

// MaxSize is the largest ring size accepted by New.
const MaxSize = 1 << 24

// An Entry is one published item. It is immutable once stored in a ring.
type Entry[T any] struct {
	Seq uint64
	// Publisher points to the publisher's identity, or is nil if it has
	// none: a pointer keeps the entry a word shorter than a string would,
	// and entries are what a publish allocates.
	Publisher *string
	Value     T
}

// A Ring is a broadcast ring of a fixed power-of-two size. Its zero value is
// not usable; create one with New or initialise one in place with Init. A
// Ring must not be copied after first use.
type Ring[T any] struct {
	_ [CacheLineSize]byte
	// head is the highest sequence claimed so far (0: none), shifted left by
	// headShift, with the gating flags below it (see gate.go). Written by
	// every publisher, so it has a line to itself.
	head atomic.Uint64
	// last is the ring's last slot (see slot). Publishers write it once a
	// lap, so it may as well live on their line.
	last atomic.Pointer[Entry[T]]
	_    [CacheLineSize - 16]byte
	// waiters is the stack of parked readers. Written by readers that park and
	// by publishers that wake them; read by every publisher.
	waiters atomic.Pointer[Waiter]
	_       [CacheLineSize - 8]byte
	// Read-only after Init. slots holds all slots but the last: see slot.
	mask  uint64
	slots []atomic.Pointer[Entry[T]]

	// Entries are allocated in chunks of consecutive sequence numbers (see
	// "Allocation" in the package doc). chunks[b&chunkMask] holds the chunk
	// of block b = seq>>chunkShift while b is being published.
	chunkShift uint
	chunkMask  uint64
	chunks     [chunksInFlight]atomic.Pointer[chunk[T]]

	// gating is set when the first gate is added (see gate.go), and read by
	// publishers only while head says the ring is gated.
	gating atomic.Pointer[gating]
}

// chunksInFlight is how many blocks of sequence numbers can be filled at
// once before a late publisher has to allocate its entry on its own.
const chunksInFlight = 4

// chunkBytes is the size a chunk of entries aims at.
const chunkBytes = 2048

// maxChunkLen caps the entries of a chunk, which bounds how many entries a
// ring keeps alive beyond its size.
const maxChunkLen = 32

// A chunk holds the entries of one block of consecutive sequence numbers.
// Each entry is written once, by the publisher of its sequence, before it is
// stored in a slot; it is never written again.
type chunk[T any] struct {
	block   uint64
	entries []Entry[T]
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
	r.slots = make([]atomic.Pointer[Entry[T]], size-1)
	// The table's blocks must span at most size sequences (see "Allocation"
	// in the package doc): inFlight*n <= size, with both powers of two.
	inFlight := min(chunksInFlight, size)
	n := chunkBytes / max(1, int(unsafe.Sizeof(Entry[T]{})))
	n = min(max(n, 1), maxChunkLen, size/inFlight)
	r.chunkShift = uint(bits.Len(uint(n)) - 1) // n rounded down to a power of two
	r.chunkMask = uint64(inFlight - 1)
}

// ValidSize reports whether size is a power of two between 1 and MaxSize.
func ValidSize(size int) bool {
	return size >= 1 && size <= MaxSize && size&(size-1) == 0
}

// Size returns the number of entries the ring holds.
func (r *Ring[T]) Size() int { return int(r.mask + 1) }

// slot returns the slot of sequence seq.
//
// The last slot lives outside the slots array, so that the array is one
// pointer short of a power of two bytes. The Go allocator puts an 8-byte
// header on every object over 512 bytes that holds pointers, so a full
// 1,024-slot array (8,192 bytes) would take the 9,472-byte size class and
// waste 1,272 bytes per topic; 1,023 slots and the header fit 8,192 exactly.
// The test i < len(slots) doubles as the bounds check, and it goes the other
// way once a lap.
func (r *Ring[T]) slot(seq uint64) *atomic.Pointer[Entry[T]] {
	if i := seq & r.mask; i < uint64(len(r.slots)) {
		return &r.slots[i]
	}
	return &r.last
}

// Head returns the highest sequence number claimed so far, or 0. An entry
// with that number may still be on its way into its slot.
func (r *Ring[T]) Head() uint64 { return r.head.Load() >> headShift }

// Publish appends an entry and returns its sequence number. It takes no lock
// and, unless the ring has gates, never blocks; when readers are parked it
// wakes them. While the ring has gates, Publish waits until every gated
// reader has read the entry it would overwrite; if ctx is done first it
// returns ctx.Err() having claimed nothing.
func (r *Ring[T]) Publish(ctx context.Context, publisher *string, v T) (uint64, error) {
	seq, err := r.claim(ctx)
	if err != nil {
		return 0, err
	}
	e := r.entry(seq)
	e.Seq, e.Publisher, e.Value = seq, publisher, v
	r.store(e)
	return seq, nil
}

// claim claims the next sequence number: one CAS on head, unless the ring is
// gated (claimGated, in gate.go).
func (r *Ring[T]) claim(ctx context.Context) (uint64, error) {
	h := r.head.Load()
	if h&gatedFlag == 0 && r.head.CompareAndSwap(h, h+headUnit) {
		return h>>headShift + 1, nil
	}
	return r.claimGated(ctx)
}

// entry returns the place for the entry of sequence seq, which the caller
// has claimed and so is the only one to write.
func (r *Ring[T]) entry(seq uint64) *Entry[T] {
	block := seq >> r.chunkShift
	place := &r.chunks[block&r.chunkMask]
	for {
		c := place.Load()
		switch {
		case c != nil && c.block == block:
			return &c.entries[seq&(1<<r.chunkShift-1)]
		case c != nil && c.block > block:
			// This publisher is so late that its block's place was taken by
			// a newer block: it gets an entry of its own.
			return new(Entry[T])
		}
		n := &chunk[T]{block: block, entries: make([]Entry[T], 1<<r.chunkShift)}
		if place.CompareAndSwap(c, n) {
			return &n.entries[seq&(1<<r.chunkShift-1)]
		}
		// Another publisher of this block (or a newer one) installed its
		// chunk first: look again.
	}
}

// store puts a claimed entry into its slot and wakes parked readers.
func (r *Ring[T]) store(e *Entry[T]) {
	slot := r.slot(e.Seq)
	for {
		old := slot.Load()
		if old != nil && old.Seq > e.Seq {
			// Lapped while descheduled: a newer entry already owns the slot.
			// Dropping ours keeps slot contents increasing; readers count it
			// as missed.
			return
		}
		if slot.CompareAndSwap(old, e) {
			break
		}
	}
	if r.waiters.Load() != nil {
		r.WakeAll()
	}
}

// Read returns the entry with sequence next or, when the ring has lapped a
// reader at next, the oldest entry after next that it still holds. The caller
// missed exactly e.Seq-next entries. Read returns nil when the entry it would
// return has not been stored yet; the caller should Park and try again.
func (r *Ring[T]) Read(next uint64) *Entry[T] {
	size := r.mask + 1
	for {
		e := r.slot(next).Load()
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

// Ready reports whether Read(next) would find an entry (or a newer one, for
// a reader that has been lapped) without waiting. It loads one slot.
func (r *Ring[T]) Ready(next uint64) bool {
	e := r.slot(next).Load()
	return e != nil && e.Seq >= next
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

// Park puts w on the ring's stack of parked readers, unless it is still
// there from an earlier Park. After Park the caller must look at its slot
// again (Read) and only then wait on w.C(): see the package doc.
func (r *Ring[T]) Park(w *Waiter) { push(&r.waiters, w) }

// WakeAll wakes every parked reader. Publish calls it when readers are
// parked; owners call it when readers must notice something else (a close).
func (r *Ring[T]) WakeAll() { wakeAll(&r.waiters) }

// push puts w on a waiter stack unless it is already queued on it.
func push(stack *atomic.Pointer[Waiter], w *Waiter) {
	if !w.queued.CompareAndSwap(false, true) {
		return
	}
	for {
		top := stack.Load()
		w.next = top
		if stack.CompareAndSwap(top, w) {
			return
		}
	}
}

// wakeAll empties a waiter stack and wakes every waiter that was on it.
func wakeAll(stack *atomic.Pointer[Waiter]) {
	w := stack.Swap(nil)
	for w != nil {
		next := w.next
		w.next = nil
		w.queued.Store(false)
		w.Wake()
		w = next
	}
}
