package ring

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Tests of the reuse of chunks of entries: a chunk serves a new block once
// it has settled and no reader holds it.

// publishLap publishes one lap of the ring (Size entries) with no publisher.
func publishLap[T any](r *Ring[T], v T) {
	for range r.Size() {
		r.Publish(context.Background(), nil, v)
	}
}

// refsOf sums a chunk's sharded reader counts.
func refsOf[T any](c *chunk[T]) (n int32) {
	for i := range c.refs {
		n += c.refs[i].n.Load()
	}
	return n
}

// publishUntil publishes until head reaches at least seq.
func publishUntil[T any](r *Ring[T], seq uint64, v T) {
	for r.Head() < seq {
		r.Publish(context.Background(), nil, v)
	}
}

// Once warm, a ring without readers, or with a reader that keeps up,
// publishes without allocating. testing.AllocsPerRun divides by the runs
// with integer division, so each run is a whole lap: a chunk per block would
// show as Size>>chunkShift allocations per run.
//
// Breaks if chunkOf never reuses (reusable returning false, or the reuse
// branch falling through to "mark dead"), or if settle/store stop counting
// settled entries; with the reader, also if Read does not let go of the
// chunk it held before (h.refs...Add(-1) removed) or Release leaks its ref.
func TestPublishReusesChunks(t *testing.T) {
	for _, size := range []int{64, 1024} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			v := benchValue{p: new(byte), n: 7}
			r := New[benchValue](size)
			for range 3 {
				publishLap(r, v)
			}
			if a := testing.AllocsPerRun(20, func() { publishLap(r, v) }); a != 0 {
				t.Errorf("no reader: %v allocations per lap of %d (chunks of %d, table of %d)", a, size, 1<<r.chunkShift, r.places())
			}

			r = New[benchValue](size)
			cur := new(Cursor[benchValue]) // on the heap: a cursor must not move
			next := uint64(1)
			lap := func() {
				for range size {
					v.n = int(next)
					seq, _ := r.Publish(context.Background(), nil, v)
					e, got := r.Read(cur, next)
					if e == nil || got != seq || got != next || e.Value.n != int(next) {
						t.Fatalf("published %d, read %v at %d (want %d)", seq, e, got, next)
					}
					next++
				}
			}
			for range 3 {
				lap()
			}
			if a := testing.AllocsPerRun(20, lap); a != 0 {
				t.Errorf("reader keeping up: %v allocations per lap of %d", a, size)
			}
			if refsOf(cur.held) != 1 {
				t.Errorf("the held chunk counts %d readers, want 1", refsOf(cur.held))
			}
			cur.Release()
		})
	}
}

// A chunk a reader holds is not handed to a newer block: it is marked dead
// and replaced, keeping its block and the entry the reader got. A chunk let
// go by Release is reused again.
//
// Breaks if reusable ignores refs (the held chunk is reset for a newer block
// and its entry overwritten), or if Release (or Read's move to another
// chunk) does not take the reader's count off (the released chunk is marked
// dead and replaced instead of reused).
func TestHeldChunkIsNotReused(t *testing.T) {
	r := New[benchValue](64)
	per := uint64(1) << r.chunkShift
	for i := 1; i <= 3; i++ {
		r.Publish(context.Background(), nil, benchValue{n: i})
	}
	cur := new(Cursor[benchValue])
	e, seq := r.Read(cur, 1)
	if e == nil || seq != 1 || e.Value.n != 1 {
		t.Fatalf("read %v at %d, want 1", e, seq)
	}
	held := cur.held
	if held == nil || held != r.byBlock[0].Load() {
		t.Fatalf("cursor holds %p, block 0's chunk is %p", held, r.byBlock[0].Load())
	}
	for range 5 {
		publishLap(r, benchValue{n: -1})
	}
	if tag := held.tag.Load(); tag != 0<<tagShift|tagDead {
		t.Errorf("held chunk's tag is %#x (block %d), want block 0 and dead", tag, tag>>tagShift)
	}
	if e.Value.n != 1 || e != &held.entries[1] {
		t.Errorf("the entry read at 1 now holds %d", e.Value.n)
	}
	for i := range r.byBlock {
		if r.byBlock[i].Load() == held {
			t.Errorf("held chunk is still in the table at %d", i)
		}
	}
	if n := refsOf(held); n != 1 {
		t.Errorf("held chunk counts %d readers, want 1", n)
	}
	cur.Release()
	if n := refsOf(held); n != 0 || cur.held != nil {
		t.Errorf("after Release: %d readers, cursor holds %p", n, cur.held)
	}

	// Hold the newest chunk, move on to another, let go of that too:
	// neither is in use any more, so both are reused a table later.
	h := r.Head()
	if e, seq := r.Read(cur, h); e == nil || seq != h {
		t.Fatalf("read %v at %d, want %d", e, seq, h)
	}
	first := cur.held
	publishUntil(r, h+per, benchValue{})
	if e, seq := r.Read(cur, h+per); e == nil || seq != h+per {
		t.Fatalf("read %v at %d, want %d", e, seq, h+per)
	}
	second := cur.held
	if first == second || refsOf(first) != 0 || refsOf(second) != 1 {
		t.Fatalf("moving on: first chunk counts %d readers, second %d", refsOf(first), refsOf(second))
	}
	cur.Release()
	b := h >> r.chunkShift
	publishUntil(r, (b+1+r.places())<<r.chunkShift, benchValue{})
	for i, c := range []*chunk[benchValue]{first, second} {
		want := b + uint64(i) + r.places()
		if got := r.place(want).Load(); got != c || c.tag.Load() != want<<tagShift {
			t.Errorf("chunk of block %d not reused for block %d: table has %p (tag %#x), chunk %p has tag %#x",
				b+uint64(i), want, got, got.tag.Load(), c, c.tag.Load())
		}
	}
	if a := testing.AllocsPerRun(20, func() { publishLap(r, benchValue{}) }); a != 0 {
		t.Errorf("%v allocations per lap after Release", a)
	}
}

// A publisher that claimed a sequence and stalled before taking its place
// while others ran more than a table ahead gets no chunk, publishes nothing
// and disturbs nothing; a reader waiting at that sequence was released by
// the store that lapped it and counts it as missed, and nothing else.
//
// Breaks if chunkOf does not return nil for a block older than the place's
// (e.g. the "t>>tagShift >= block: return nil" test removed, so the late
// publisher kills or takes over the newer chunk), or if Read does not skip a
// lapped slot (a mutated "w > next" branch).
func TestLatePublisherBeyondTheTable(t *testing.T) {
	const size = 64
	r := New[int](size)
	per := uint64(1) << r.chunkShift
	for i := 1; i <= 5; i++ {
		pub(r, "", i)
	}
	rd := newReader(r, 1)
	for range 5 {
		rd.read(t)
	}
	s, err := r.claim(context.Background()) // stalls before chunkOf
	if err != nil || s != 6 {
		t.Fatalf("claimed %d, %v", s, err)
	}
	done := make(chan *seqEntry[int])
	go func() { done <- rd.wait(t) }()
	for i := s + 1; i <= s+size; i++ {
		pub(r, "", int(i))
	}
	if e := <-done; e == nil || e.Seq != s+1 || rd.missed != 1 {
		t.Fatalf("woke with %+v, missed %d; want %d after missing %d", e, rd.missed, s+1, s)
	}
	block := s >> r.chunkShift
	for r.Head() < (block+r.places())<<r.chunkShift {
		seq := pub(r, "", int(r.Head()+1))
		for e := rd.read(t); e != nil; e = rd.read(t) {
			if e.Value != int(e.Seq) {
				t.Fatalf("seq %d holds %d", e.Seq, e.Value)
			}
		}
		if rd.next != seq+1 {
			t.Fatalf("reader at %d after publish %d", rd.next, seq)
		}
	}
	place := r.place(block)
	before := place.Load()
	tag := before.tag.Load()
	if tag>>tagShift < block+r.places() {
		t.Fatalf("the place of block %d holds block %d, want at least %d", block, tag>>tagShift, block+r.places())
	}
	slot := r.slot(s).Load()
	if c := r.chunkOf(block); c != nil {
		t.Fatalf("late publisher got a chunk of tag %#x", c.tag.Load())
	}
	if place.Load() != before || before.tag.Load() != tag || r.slot(s).Load() != slot {
		t.Errorf("late chunkOf changed the table: place %p->%p, tag %#x->%#x, slot %d->%d",
			before, place.Load(), tag, before.tag.Load(), slot, r.slot(s).Load())
	}
	if slot < s+size || slot%size != s%size {
		t.Errorf("slot of %d holds %d", s, slot)
	}
	for range per {
		pub(r, "", int(r.Head()+1))
	}
	for e := rd.read(t); e != nil; e = rd.read(t) {
	}
	if h := r.Head(); rd.missed != 1 || rd.delivered != h-1 || rd.next != h+1 {
		t.Errorf("delivered %d, missed %d, next %d; want %d, 1, %d", rd.delivered, rd.missed, rd.next, h-1, h+1)
	}
}

// A late publisher of block b that finds b's chunk dead (marked by a
// publisher of b+w that has not replaced it yet) or busy (being reset for
// b+w) also gets nil and leaves the chunk alone: at most one chunk ever
// carries a block. The states are set by hand, as the newer publisher would
// leave them between its CASes.
//
// Breaks if chunkOf's "t>>tagShift >= block" becomes ">" (the late
// publisher installs a second chunk of b, or abandons the busy one).
func TestLatePublisherFindsItsChunkTaken(t *testing.T) {
	for _, flag := range []uint64{tagDead, tagBusy} {
		t.Run(fmt.Sprint(flag), func(t *testing.T) {
			r := New[int](64)
			per := uint64(1) << r.chunkShift
			for i := 1; i <= int(per)+1; i++ {
				pub(r, "", i)
			}
			place := &r.byBlock[1]
			c := place.Load()
			if c.tag.Load() != 1<<tagShift {
				t.Fatalf("block 1's chunk has tag %#x", c.tag.Load())
			}
			c.tag.Store(1<<tagShift | flag)
			if got := r.chunkOf(1); got != nil {
				t.Errorf("late publisher of block 1 got a chunk of tag %#x", got.tag.Load())
			}
			if place.Load() != c || c.tag.Load() != 1<<tagShift|flag {
				t.Errorf("place holds %p (was %p), tag %#x", place.Load(), c, c.tag.Load())
			}
		})
	}
}

// The "lost" path of Read: s's publisher took its entry in the chunk of its
// block and stalled; the publisher of s+size stalled too (so s's slot stays
// below s); the others ran a table ahead, so s's chunk, unsettled, was marked
// dead and replaced. Then s is stored: its slot holds s, but the place of its
// block holds a newer block. A reader that does not hold the dead chunk must
// skip s (and what was lapped after it), counting it as missed, without
// spinning forever.
//
// Breaks if Read's lost branch does not advance (next++ removed: Read spins,
// caught by the deadline), or if chunkOf reuses or keeps a chunk with an
// unsettled entry (then the place still holds s's block and s is delivered).
func TestReaderSkipsEntryOfAbandonedChunk(t *testing.T) {
	const size = 64
	r := New[benchValue](size)
	per := uint64(1) << r.chunkShift
	if per != 16 || r.places() != 6 {
		t.Fatalf("chunks of %d, table of %d: the numbers below assume 16 and 6", per, r.places())
	}
	const s = 80 // first of block 5
	publishUntil(r, s-1, benchValue{n: 1})
	early := claim(r, "early", benchValue{n: -1})
	if early.Seq != s || early.c == nil || early.c != r.byBlock[5].Load() {
		t.Fatalf("claimed %d in chunk %p", early.Seq, early.c)
	}
	for i := s + 1; i < s+size; i++ {
		r.Publish(context.Background(), nil, benchValue{n: i})
	}
	stalled := claim(r, "stalled", benchValue{n: s + size})
	if stalled.Seq != s+size || stalled.c == nil {
		t.Fatalf("claimed %d in chunk %p", stalled.Seq, stalled.c)
	}
	last := uint64(s + r.places()*per) // first of block 11, whose place is block 5's
	for i := s + size + 1; i <= int(last); i++ {
		r.Publish(context.Background(), nil, benchValue{n: i})
	}
	if tag := early.c.tag.Load(); tag != 5<<tagShift|tagDead {
		t.Fatalf("s's chunk has tag %#x, want block 5, dead", tag)
	}
	if tag := r.byBlock[5].Load().tag.Load(); tag != 11<<tagShift {
		t.Fatalf("block 5's place holds tag %#x, want block 11", tag)
	}
	if got := r.slot(s).Load(); got != s-size {
		t.Fatalf("slot of %d holds %d before the late store", s, got)
	}
	r.storeClaimed(early)
	if got := r.slot(s).Load(); got != s {
		t.Fatalf("slot of %d holds %d after the late store", s, got)
	}

	rd := newReader(r, s)
	done := make(chan *seqEntry[benchValue], 1)
	go func() { done <- rd.read(t) }()
	var e *seqEntry[benchValue]
	select {
	case e = <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("Read at %d did not return", s)
	}
	// s is lost; s+1..s+32 were lapped by s+size+1..last.
	if want := last - size + 1; e == nil || e.Seq != want || e.Value.n != int(want) || rd.missed != want-s {
		t.Fatalf("read %+v, missed %d; want seq %d after missing %d", e, rd.missed, want, want-s)
	}
	for want := e.Seq + 1; want < s+size; want++ {
		if e := rd.read(t); e == nil || e.Seq != want || e.Value.n != int(want) {
			t.Fatalf("read %+v, want %d", e, want)
		}
	}
	if e := rd.read(t); e != nil {
		t.Fatalf("read %d before %d was stored", e.Seq, s+size)
	}
	r.storeClaimed(stalled)
	for want := uint64(s + size); want <= last; want++ {
		if e := rd.read(t); e == nil || e.Seq != want || e.Value.n != int(want) {
			t.Fatalf("read %+v, want %d", e, want)
		}
	}
	if rd.missed != last-size+1-s {
		t.Errorf("missed %d", rd.missed)
	}
	rd.cur.Release()
}
