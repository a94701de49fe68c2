// Package ring is the broadcast ring at the heart of every topic.
//
// # Contract
//
// A Ring holds the newest Size entries published to one topic. Any number of
// goroutines may publish at once (multi-producer). Any number of readers may
// read at once, each with its own cursor that it alone owns (broadcast: every
// reader sees every entry, nobody consumes one). A reader writes shared state
// only once per chunk of entries (a reference count, below), and when it has
// nothing to read and parks (the waiter stack).
//
// A publish claims a sequence number with one compare-and-swap on head,
// writes its [Entry] at the place of that sequence in a chunk of entries, and
// then stores the sequence itself in slot seq&mask. A slot holds the highest
// sequence stored in it; the entry is found from the sequence. An entry is
// not modified while its sequence is in its slot or a reader holds its
// chunk, so a reader never sees a torn one.
//
// Lossless readers add a [Gate] (see gate.go): while a ring has gates,
// publishers wait rather than overwrite an entry a gated reader has not read.
// A ring without gates pays one flag test per publish for that.
//
// # Reading a slot
//
// A reader that wants sequence n loads slot n&mask and compares the sequence
// it holds with n:
//
//   - equal: n is there, and its entry is in the chunk of n's block (below);
//   - lower (or zero): n is not written yet; the reader waits;
//   - higher: the ring has lapped the reader. The slot holds n+k*Size for some
//     k ≥ 1, so every sequence up to that minus Size is gone; the reader moves
//     its target to it minus Size plus one and looks again. The distance it
//     moved is exactly what it missed, because sequence numbers have no gaps.
//
// Only the first case touches an entry: waiting and skipping are decided from
// the slot alone.
//
// # The slow publisher
//
// A publisher may claim n and be descheduled before it stores. Meanwhile a
// faster publisher may claim n+Size and store it into the same slot. When the
// slow one wakes, a plain store would put an older sequence over a newer one
// and readers would see sequence numbers go backwards. So the store is a
// compare-and-swap that only ever replaces a lower sequence: a publisher that
// finds a higher one in its slot drops its entry, which was lapped before
// anyone could read it; readers count it as missed like any other lapped
// entry. Slot contents therefore only grow, which is what the reading rule
// above relies on. Since slots hold sequences, which are never reused, the
// compare-and-swap cannot be fooled by a value that went away and came back
// (the ABA problem) the way a pointer to reused memory could. A reader
// waiting for n while n's publisher is stalled is released either by that
// publisher's store or, if n is lapped first, by the store of n+k*Size that
// it then sees as "higher".
//
// # Entries and their reuse
//
// Entries are not allocated one by one, and their memory is reused: a
// publish that allocated, even a slice of a bigger block, paid for the
// allocation and the garbage collection it drives more than for everything
// else it does (BENCHMARKS.md has the figures). Sequences are grouped in blocks of
// consecutive numbers (up to 32, about 1 KiB of entries); the entries of a
// block live in one chunk, the entry of n at index n mod the chunk's length.
// The chunk of block b is found in a table at b mod w, where w is the
// number of blocks in a lap plus a few spare places, so the table holds the
// chunk of every block that can still have a sequence in a slot, and some
// for late publishers and readers.
//
// A chunk carries a tag: its block, and two flags, dead and busy. A chunk
// may serve a new block once it has settled, that is once each of its
// entries has been replaced in its slot (counted by the publisher whose
// compare-and-swap replaced it) or dropped (counted by its own publisher), and
// once no reader holds it. The publisher that first needs the table's place
// for a newer block finds the old chunk there and:
//
//   - takes it over if it has settled and nobody holds it: tag busy (so that
//     nobody else takes or counts it), settled count reset, tag set to the
//     new block. A publisher that finds a chunk busy marks it dead rather
//     than wait, so no publisher ever waits for another;
//   - otherwise marks it dead and installs a fresh chunk. A dead chunk is
//     never reused; whoever still holds a pointer into it keeps it alive,
//     and the garbage collector frees it afterwards.
//
// A live chunk leaves the table only after it was marked dead, and a fresh
// chunk gets its block before it is installed, so at most one chunk ever
// carries a given block, and the block at a place of the table only grows.
// A publisher that finds a newer block at its place is more than a lap late:
// its sequence is lapped already, and it publishes nothing (a reader waiting
// for it is released by the next store in that slot). A publisher counts a
// replaced sequence only in a chunk whose tag is exactly that sequence's
// live block: an abandoned chunk's count no longer matters.
//
// A reader keeps a reference on one chunk at a time (a [Cursor]), the chunk
// of the entry it read last. When the entry it wants is in another chunk, it
// adds itself to that chunk's reference count, then checks that the chunk's
// tag carries the block and that the slot still holds the sequence; if not,
// it lets go and reads the slot again. A publisher that takes a chunk over
// first finds it settled, then finds it unreferenced. If the reader's check
// saw the slot still holding n, the replacement of n, and with it the chunk's
// settling, comes after the reader's reference in the single order of atomic
// operations (below), so the publisher sees the reference and does not take
// the chunk. If the slot still holds n but the table's place holds a newer
// block, n's publisher was more than a lap late and its chunk was abandoned:
// head is past n+Size, so the reader counts n as missed. Reference counts are
// spread over four cache lines, so that readers of a busy topic moving to
// the next chunk together do not all write one line. A reader lets go of its
// chunk before it parks and when its subscription ends.
//
// Memory stays bounded: the table holds at most w chunks, whose entries
// (and the payloads they point to) stay alive until they are overwritten.
// Small rings get shorter chunks (Init), so that the spare places hold few
// payloads: with 32-entry chunks, a ring of size 1 would keep hundreds alive.
//
// # Reading in runs
//
// A reader that keeps up reads the entries of one chunk in a row. Only the
// first entry it reads from a chunk needs the full check above (reference,
// tag, slot again); for the others, it suffices that the slot holds the
// sequence and that the chunk the reader holds carries the sequence's block:
// at most one chunk ever carries a block, and a held chunk is not reused, so
// the entry was written into that chunk before its sequence was stored, and
// stays as it is while the chunk is held. [Ring.ReadRun] hands out every
// entry from the first up to the first slot that does not hold its sequence
// or the end of the chunk, at one slot load each; [Ring.ReadHeld] is the
// same check for one entry. An entry of a run may be lapped after the run
// was taken; it is still whole, and delivering it is what a Read just before
// the lap would have done.
//
// # Memory ordering
//
// Go's atomic operations are sequentially consistent ("the Go memory model":
// all atomic operations behave as if executed in some single total order
// consistent with each goroutine's program order, and an atomic write
// synchronizes before any atomic read that observes it).
//
//   - An entry is written before its sequence is stored by CAS, and read after
//     the sequence is loaded, so a reader that observes the sequence observes
//     the whole entry.
//   - A reader's reads of an entry come before it lets go of the chunk (an
//     atomic add); a publisher that takes the chunk over has read a zero count
//     after that, so its writes come after the reader's reads.
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
//
// # Rejected designs
//
// Measured and left out (the figures are in BENCHMARKS.md, "Design choices
// and what they measured" and "What was tried"):
//
//   - An allocation per entry: the allocation and the garbage collection it
//     drives cost more than the rest of a publish.
//   - Pointers to entries in the slots, each entry pointing to its chunk: a
//     slot's compare-and-swap can be fooled by reused memory (ABA), and
//     fan-out to many readers got slower.
//   - Claiming with an atomic add: a gated ring could only undo a claim, not
//     refuse it; a compare-and-swap costs nothing measurable uncontended.
//   - A slot array of pointers: objects over 512 bytes that hold pointers
//     carry a header, which pushes a 1,024-slot array into a larger size
//     class; sequences fill the 8,192-byte class exactly.
//   - Bigger chunks: no gain; what is left of a publish's cost is zeroing
//     and marking memory, in proportion to its size.
//   - Entries without pointers for a pointer-free T (the publisher kept
//     elsewhere): no gain; what entries cost was allocating them, which
//     reusing chunks removes, not the collector scanning them.
//   - Readers spinning before they park: no gain; a reader that keeps up
//     parks rarely, and waking is not where its time goes.
//   - Gated readers waking publishers only once past what they need,
//     rather than after each item: no gain.
//   - Consecutive sequences on different cache lines (slots, and entries of
//     a chunk): no gain.
//   - Deciding in store from head, rather than from the sequence being
//     replaced, that the slot holds no newer entry: no gain.
//   - Deciding from head rather than from the next slot that a reader has
//     caught up: no gain.
//   - One cache line for a chunk's reference counts: no measured gain from
//     spreading them either, but one line would be written by every reader
//     of a busy topic moving to the next chunk at once.
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

// An Entry is one published item. Its sequence is not stored: it is implied
// by the entry's place in its chunk. It is not modified while its sequence is
// in its slot or a reader holds its chunk.
type Entry[T any] struct {
	// Publisher points to the publisher's identity, or is nil if it has
	// none: a pointer keeps the entry, and so every chunk, a word shorter
	// than a string would.
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
	_    [CacheLineSize - 8]byte
	// waiters is the stack of parked readers. Written by readers that park and
	// by publishers that wake them; read by every publisher.
	waiters atomic.Pointer[Waiter]
	_       [CacheLineSize - unsafe.Sizeof(atomic.Pointer[Waiter]{})]byte // a word: 4 or 8 bytes
	// Read-only after Init. slots[seq&mask] holds the highest sequence
	// stored there (0: none).
	mask  uint64
	slots []atomic.Uint64

	// The entry of sequence n is entries[n&(1<<chunkShift-1)] of the chunk
	// of block n>>chunkShift, found at its place in byBlock (see "Entries and
	// their reuse" in the package doc).
	chunkShift uint
	byBlock    []atomic.Pointer[chunk[T]]

	// gating is set when the first gate is added (see gate.go), and read by
	// publishers only while head says the ring is gated.
	gating atomic.Pointer[gating]
}

// minBlocks is the fewest blocks a ring is cut into: chunks of a small ring
// hold at most size/minBlocks entries, so that the table's spare chunks keep
// few stale payloads alive.
const minBlocks = 4

// chunkBytes is the size a chunk of entries aims at.
const chunkBytes = 2048

// maxChunkLen caps the entries of a chunk, which bounds how many entries the
// table's spare chunks keep alive beyond the ring's size.
const maxChunkLen = 32

// refShards is how many cache lines a chunk's reader count is spread over
// (a power of two).
const refShards = 4

// A chunk's tag is its block shifted left by tagShift, with two flags:
// dead (abandoned, never reused: its block bits stay) and busy (being
// reset for reuse by a publisher of a newer block).
const (
	tagDead  = 1
	tagBusy  = 2
	tagShift = 2
)

// A chunk holds the entries of one block of consecutive sequence numbers.
//
// A chunk may be reused for a newer block once every entry of its block has
// settled (been replaced in its slot by a newer sequence, or dropped by a
// publisher that found its slot newer) and no reader holds it. At most one chunk ever carries a given block in its tag:
// a fresh chunk gets it before it is installed (by CAS) in byBlock, a reused
// one by a CAS on the tag of the chunk in byBlock, and a live chunk leaves
// byBlock only after it was marked dead. So the place's block only grows.
type chunk[T any] struct {
	// tag and entries are read by readers; tag is written once per block.
	tag     atomic.Uint64
	entries []Entry[T]
	_       [CacheLineSize - 32]byte
	// settled is written once per publish (by the publisher that replaces an
	// entry of this block, or drops its own).
	settled atomic.Int64
	_       [CacheLineSize - 8]byte
	// refs counts the readers holding the chunk, spread over refShards lines.
	refs [refShards]struct {
		n atomic.Int32
		_ [CacheLineSize - 4]byte
	}
}

// A Cursor is a reader's hold on at most one chunk, the one its last read
// entry lives in. Its zero value holds nothing. It must not be copied while
// it holds a chunk, and is used by one goroutine at a time.
type Cursor[T any] struct {
	held *chunk[T]
}

func (cur *Cursor[T]) shard() uintptr {
	return uintptr(unsafe.Pointer(cur)) >> 7 & (refShards - 1)
}

// Release lets go of the chunk the cursor holds, if any.
func (cur *Cursor[T]) Release() {
	if h := cur.held; h != nil {
		h.refs[cur.shard()].n.Add(-1)
		cur.held = nil
	}
}

func (c *chunk[T]) reusable() bool {
	if c.settled.Load() != int64(len(c.entries)) {
		return false
	}
	var n int32
	for i := range c.refs {
		n += c.refs[i].n.Load()
	}
	return n == 0
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
	r.slots = make([]atomic.Uint64, size)
	n := chunkBytes / max(1, int(unsafe.Sizeof(Entry[T]{})))
	n = min(max(n, 1), maxChunkLen, size/min(minBlocks, size))
	r.chunkShift = uint(bits.Len(uint(n)) - 1) // n rounded down to a power of two
	// The table must hold every block that can have an entry in a slot, a
	// lap, and some slack for late publishers and readers holding chunks:
	// each slack block keeps a chunk of stale payloads alive.
	blocks := uint64(size) >> r.chunkShift
	r.byBlock = make([]atomic.Pointer[chunk[T]], blocks+min(8, max(2, blocks/4)))
}

// Footprint returns the bytes a ring allocates up front, whatever it holds:
// its slots and its table of chunks. Entries come on top, a chunk at a time,
// as items are published.
func (r *Ring[T]) Footprint() int {
	return len(r.slots)*int(unsafe.Sizeof(r.slots[0])) + len(r.byBlock)*int(unsafe.Sizeof(r.byBlock[0]))
}

// places returns the number of places in the table of chunks.
func (r *Ring[T]) places() uint64 { return uint64(len(r.byBlock)) }

// place returns the place in the table of chunks of the chunk of block.
func (r *Ring[T]) place(block uint64) *atomic.Pointer[chunk[T]] {
	return &r.byBlock[block%r.places()]
}

// ValidSize reports whether size is a power of two between 1 and MaxSize.
func ValidSize(size int) bool {
	return size >= 1 && size <= MaxSize && size&(size-1) == 0
}

// Size returns the number of entries the ring holds.
func (r *Ring[T]) Size() int { return int(r.mask + 1) }

// slot returns the slot of sequence seq.
func (r *Ring[T]) slot(seq uint64) *atomic.Uint64 {
	return &r.slots[seq&r.mask]
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
	c := r.chunkOf(seq >> r.chunkShift)
	if c == nil {
		// Hopelessly late: a newer block has the place of ours, so seq is
		// lapped already; nobody could find the entry. Publish nothing.
		return seq, nil
	}
	e := &c.entries[seq&(1<<r.chunkShift-1)]
	e.Publisher, e.Value = publisher, v
	r.store(c, seq)
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

func (r *Ring[T]) newChunk(block uint64) *chunk[T] {
	c := &chunk[T]{entries: make([]Entry[T], 1<<r.chunkShift)}
	c.tag.Store(block << tagShift)
	if block == 0 {
		c.settled.Store(1) // sequence 0 is never published
	}
	return c
}

// chunkOf returns the chunk of block, installing one (fresh or reused) if
// need be, or nil if a newer block has taken its place.
func (r *Ring[T]) chunkOf(block uint64) *chunk[T] {
	place := r.place(block)
	live := block << tagShift
	for {
		c := place.Load()
		if c == nil {
			n := r.newChunk(block)
			if place.CompareAndSwap(nil, n) {
				return n
			}
			continue
		}
		t := c.tag.Load()
		if t == live {
			return c
		}
		if t>>tagShift >= block {
			return nil
		}
		switch {
		case t&tagBusy != 0:
			// Another publisher is resetting it for a block of its own:
			// abandon it rather than wait for that publisher.
			c.tag.CompareAndSwap(t, t&^tagBusy|tagDead)
			continue
		case t&tagDead == 0:
			if c.reusable() {
				// Busy first, so that nobody else takes or counts it while
				// its count is reset; readers see a block that is not theirs.
				if !c.tag.CompareAndSwap(t, t|tagBusy) {
					continue
				}
				c.settled.Store(0)
				if c.tag.CompareAndSwap(t|tagBusy, live) {
					return c
				}
				continue // abandoned meanwhile
			}
			if !c.tag.CompareAndSwap(t, t|tagDead) {
				continue
			}
		}
		// c is dead: replace it.
		n := r.newChunk(block)
		if place.CompareAndSwap(c, n) {
			return n
		}
	}
}

// store puts sequence s, whose entry in c is written, into its slot and
// wakes parked readers.
func (r *Ring[T]) store(c *chunk[T], s uint64) {
	slot := r.slot(s)
	for {
		cur := slot.Load()
		if cur > s {
			// Lapped while descheduled: drop ours (readers count it as
			// missed), which settles it.
			c.settled.Add(1)
			return
		}
		if slot.CompareAndSwap(cur, s) {
			if cur != 0 {
				r.settle(cur)
			}
			break
		}
	}
	if r.waiters.Load() != nil {
		r.WakeAll()
	}
}

// settle counts sequence s as replaced in its slot, in its chunk if that is
// still the chunk of its block (an abandoned one is never reused).
func (r *Ring[T]) settle(s uint64) {
	b := s >> r.chunkShift
	if c := r.place(b).Load(); c != nil && c.tag.Load() == b<<tagShift {
		c.settled.Add(1)
	}
}

// Read returns the entry with sequence next or, when the ring has lapped a
// reader at next, the oldest entry after next that it still holds, and its
// sequence. The caller missed exactly seq-next entries. Read returns nil when
// the entry it would return has not been stored yet; the caller should Park
// and try again. The entry stays valid while cur holds its chunk.
func (r *Ring[T]) Read(cur *Cursor[T], next uint64) (*Entry[T], uint64) {
	size := r.mask + 1
	for {
		slot := r.slot(next)
		w := slot.Load()
		if w < next {
			return nil, 0
		}
		if w > next {
			// w ≡ next (mod size), so w ≥ next+size.
			next = w - size + 1
			continue
		}
		b := next >> r.chunkShift
		if h := cur.held; h == nil || h.tag.Load()>>tagShift != b {
			c := r.place(b).Load()
			if c == nil {
				panic("ring: no chunk for a stored sequence")
			}
			ref := &c.refs[cur.shard()].n
			ref.Add(1)
			t := c.tag.Load()
			if t>>tagShift != b || slot.Load() != next {
				ref.Add(-1)
				if t>>tagShift > b && slot.Load() == next {
					// The chunk of next was abandoned and a newer block
					// (more than a lap on) took its place: next is lost.
					next++
				}
				continue
			}
			if h != nil {
				h.refs[cur.shard()].n.Add(-1)
			}
			cur.held = c
		}
		return &cur.held.entries[next&(1<<r.chunkShift-1)], next
	}
}

// ReadHeld returns the entry of sequence next if it is stored and lives in
// the chunk cur holds, and nil otherwise, in which case the caller uses
// Read. It is the case of a reader that keeps up, inside a chunk: one slot
// load, no reference to take.
func (r *Ring[T]) ReadHeld(cur *Cursor[T], next uint64) *Entry[T] {
	h := cur.held
	if h == nil || r.slot(next).Load() != next || h.tag.Load()>>tagShift != next>>r.chunkShift {
		return nil
	}
	return &h.entries[next&(1<<r.chunkShift-1)]
}

// ReadRun is Read for a reader that takes several entries at a time: it
// returns the entries from the one Read would return up to the last one
// stored without a gap in the same chunk, and the sequence of the first. The
// entry of sequence seq+i is run[i]. It returns nil when Read would. The
// entries stay valid while cur holds their chunk.
//
// Past the first entry, a run costs one slot load per entry: an entry of the
// held chunk whose slot holds its sequence was written into that chunk,
// since no other chunk ever carries the chunk's block.
func (r *Ring[T]) ReadRun(cur *Cursor[T], next uint64) (run []Entry[T], seq uint64) {
	e, seq := r.Read(cur, next)
	if e == nil {
		return nil, 0
	}
	entries := cur.held.entries
	i := seq & (1<<r.chunkShift - 1)
	j := i + 1
	for s := seq + 1; j < uint64(len(entries)) && r.slot(s).Load() == s; s++ {
		j++
	}
	return entries[i:j:j], seq
}

// Ready reports whether Read(next) would find an entry (or a newer one, for
// a reader that has been lapped) without waiting. It loads one slot.
func (r *Ring[T]) Ready(next uint64) bool {
	return r.slot(next).Load() >= next
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
