package ring

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// reader is a test reader: a cursor and the bookkeeping to check it.
type reader[T any] struct {
	r         *Ring[T]
	next      uint64
	delivered uint64
	missed    uint64
	w         Waiter
	gate      *Gate // set for a lossless reader
	cur       Cursor[T]
}

// seqEntry is an entry as a test sees it: with its sequence.
type seqEntry[T any] struct {
	Seq uint64
	*Entry[T]
}

// claimed is a claimed, written, not yet stored entry.
type claimed[T any] struct {
	c   *chunk[T]
	Seq uint64
	*Entry[T]
}

func newReader[T any](r *Ring[T], from uint64) *reader[T] {
	rd := &reader[T]{r: r, next: from}
	rd.w.Init()
	return rd
}

// read returns the next entry without waiting, or nil.
func (rd *reader[T]) read(t *testing.T) *seqEntry[T] {
	t.Helper()
	en, seq := rd.r.Read(&rd.cur, rd.next)
	if en == nil {
		return nil
	}
	e := &seqEntry[T]{seq, en}
	if e.Seq < rd.next {
		t.Fatalf("read seq %d, wanted at least %d", e.Seq, rd.next)
	}
	rd.missed += e.Seq - rd.next
	rd.delivered++
	rd.next = e.Seq + 1
	if rd.gate != nil {
		rd.gate.Advance(rd.next)
	}
	return e
}

// wait parks until the next entry is readable and returns it, failing the
// test after a generous deadline.
func (rd *reader[T]) wait(t *testing.T) *seqEntry[T] {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if e := rd.read(t); e != nil {
			return e
		}
		rd.r.Park(&rd.w)
		if e := rd.read(t); e != nil {
			return e
		}
		select {
		case <-rd.w.C():
		case <-deadline:
			t.Errorf("reader waiting for %d was never woken (head %d)", rd.next, rd.r.Head())
			return nil
		}
	}
}

// claim does the first half of a publish, as a publisher that is then
// descheduled would: the caller stores the entry later.
func claim[T any](r *Ring[T], publisher string, v T) *claimed[T] {
	seq, err := r.claim(context.Background())
	if err != nil {
		panic(err)
	}
	c := r.chunkOf(seq >> r.chunkShift)
	e := new(Entry[T]) // hopelessly late: publishes nothing
	if c != nil {
		e = &c.entries[seq&(1<<r.chunkShift-1)]
	}
	e.Publisher, e.Value = &publisher, v
	return &claimed[T]{c, seq, e}
}

func (r *Ring[T]) storeClaimed(e *claimed[T]) {
	if e.c != nil {
		r.store(e.c, e.Seq)
	}
}

// pub publishes on a ring without gates.
func pub[T any](r *Ring[T], publisher string, v T) uint64 {
	seq, err := r.Publish(context.Background(), &publisher, v)
	if err != nil {
		panic(err)
	}
	return seq
}

func TestValidSize(t *testing.T) {
	for _, n := range []int{1, 2, 4, 1024, MaxSize} {
		if !ValidSize(n) {
			t.Errorf("ValidSize(%d) = false", n)
		}
	}
	for _, n := range []int{-4, 0, 3, 6, 1000, MaxSize * 2} {
		if ValidSize(n) {
			t.Errorf("ValidSize(%d) = true", n)
		}
	}
}

func TestNewPanicsOnBadSize(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New(3) did not panic")
		}
	}()
	New[int](3)
}

// A reader that keeps up goes round the ring many times without loss.
func TestWrapAround(t *testing.T) {
	for _, size := range []int{1, 2, 4, 8} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			r := New[int](size)
			rd := newReader(r, 1)
			for i := 1; i <= 5*size+3; i++ {
				if seq := pub(r, "p", i); seq != uint64(i) {
					t.Fatalf("publish %d got seq %d", i, seq)
				}
				e := rd.read(t)
				if e == nil || e.Seq != uint64(i) || e.Value != i || *e.Publisher != "p" {
					t.Fatalf("after publish %d read %+v", i, e)
				}
				if e := rd.read(t); e != nil {
					t.Fatalf("read %+v past the head", e)
				}
			}
			if rd.missed != 0 {
				t.Errorf("missed %d", rd.missed)
			}
		})
	}
}

// A reader that falls behind skips to the oldest entry held and misses
// exactly what was overwritten.
func TestLapping(t *testing.T) {
	for _, size := range []int{1, 2, 4, 8} {
		for published := 0; published <= 3*size+1; published++ {
			t.Run(fmt.Sprintf("size=%d/published=%d", size, published), func(t *testing.T) {
				r := New[int](size)
				for i := 1; i <= published; i++ {
					pub(r, "", i)
				}
				rd := newReader(r, 1)
				first := true
				for e := rd.read(t); e != nil; e = rd.read(t) {
					wantSeq := uint64(max(1, published-size+1))
					if first && e.Seq != wantSeq {
						t.Fatalf("first read %d, want oldest held %d", e.Seq, wantSeq)
					}
					if e.Value != int(e.Seq) {
						t.Fatalf("seq %d holds %d", e.Seq, e.Value)
					}
					first = false
				}
				wantMissed := uint64(max(0, published-size))
				if rd.missed != wantMissed || rd.delivered+rd.missed != uint64(published) {
					t.Errorf("delivered %d missed %d of %d; want missed %d", rd.delivered, rd.missed, published, wantMissed)
				}
			})
		}
	}
}

// The overwrite hazard: a publisher that claimed k and stalled must not
// replace k+size, stored meanwhile by a faster one.
func TestSlowPublisherDoesNotOverwriteNewer(t *testing.T) {
	const size = 4
	r := New[int](size)
	slow := claim(r, "slow", -1) // claimed 1, not stored yet
	for i := 2; i <= size+1; i++ {
		pub(r, "fast", i) // 2..5; 5 shares a slot with 1
	}
	r.storeClaimed(slow)
	if got := r.slot(1).Load(); got != size+1 {
		t.Fatalf("slot of 1 and 5 holds seq %d after the slow store", got)
	}
	rd := newReader(r, 1)
	var seqs []uint64
	for e := rd.read(t); e != nil; e = rd.read(t) {
		seqs = append(seqs, e.Seq)
		if e.Value == -1 {
			t.Fatalf("the slow publisher's lapped entry was delivered")
		}
	}
	if fmt.Sprint(seqs) != "[2 3 4 5]" || rd.missed != 1 {
		t.Errorf("read %v, missed %d; want [2 3 4 5] and 1", seqs, rd.missed)
	}
}

// A reader waiting on a sequence whose publisher stalled waits for it (order
// is kept), and is released when the stalled publisher stores it.
func TestReaderWaitsForStalledSequence(t *testing.T) {
	r := New[int](8)
	stalled := claim(r, "", 1)
	pub(r, "", 2)
	rd := newReader(r, 1)
	if e := rd.read(t); e != nil {
		t.Fatalf("read %d before 1 was stored", e.Seq)
	}
	done := make(chan *seqEntry[int])
	go func() { done <- rd.wait(t) }()
	r.storeClaimed(stalled)
	if e := <-done; e == nil || e.Seq != 1 {
		t.Fatalf("woke with %+v, want seq 1", e)
	}
	if e := rd.read(t); e == nil || e.Seq != 2 {
		t.Fatalf("then read %+v, want seq 2", e)
	}
}

// A reader waiting on a sequence whose publisher stalled is released when
// that sequence is lapped, and counts it as missed.
func TestReaderReleasedWhenStalledSequenceIsLapped(t *testing.T) {
	const size = 4
	r := New[int](size)
	stalled := claim(r, "", 1)
	rd := newReader(r, 1)
	done := make(chan *seqEntry[int])
	go func() { done <- rd.wait(t) }()
	for i := 2; i <= size+1; i++ {
		pub(r, "", i)
	}
	e := <-done
	if e == nil || e.Seq != 2 || rd.missed != 1 {
		t.Fatalf("woke with %+v, missed %d; want seq 2 after missing 1", e, rd.missed)
	}
	r.storeClaimed(stalled) // late and lapped: dropped
	for want := uint64(3); want <= size+1; want++ {
		if e := rd.read(t); e == nil || e.Seq != want {
			t.Fatalf("read %+v, want seq %d", e, want)
		}
	}
}

func TestParkAndWake(t *testing.T) {
	r := New[int](4)
	var w Waiter
	w.Init()

	pub(r, "", 1) // nobody parked: no token anywhere
	select {
	case <-w.C():
		t.Fatal("token without Park")
	default:
	}

	r.Park(&w)
	r.Park(&w) // still queued: not pushed twice
	if top := r.waiters.Load(); top != &w || top.next != nil {
		t.Fatalf("stack after two Parks: top %p next %p", top, top.next)
	}
	pub(r, "", 2)
	select {
	case <-w.C():
	default:
		t.Fatal("no token after Publish")
	}
	if r.waiters.Load() != nil {
		t.Fatal("stack not emptied by the wake")
	}
	r.WakeAll() // empty stack: nothing happens
	select {
	case <-w.C():
		t.Fatal("token from WakeAll on an empty stack")
	default:
	}
}

func TestWakeAllWakesEveryParkedReader(t *testing.T) {
	r := New[int](4)
	ws := make([]Waiter, 50)
	for i := range ws {
		ws[i].Init()
		r.Park(&ws[i])
	}
	r.WakeAll()
	for i := range ws {
		select {
		case <-ws[i].C():
		default:
			t.Fatalf("waiter %d not woken", i)
		}
	}
}

// value is a payload that can tell whether it was torn: sum is derived from
// the other fields.
type value struct {
	publisher, n int
	sum          uint64
}

func newValue(publisher, n int) value {
	return value{publisher, n, checksum(publisher, n)}
}

func checksum(publisher, n int) uint64 {
	return uint64(publisher)*0x9E3779B97F4A7C15 ^ uint64(n)*0xC2B2AE3D27D4EB4F
}

// Many publishers, some of them stalling between claim and store, and many
// readers parking and waking: every reader sees increasing sequences, whole
// entries, each publisher's values in order, and accounts for every
// sequence as delivered or missed.
func TestConcurrentPublishersAndReaders(t *testing.T) {
	cases := []struct {
		name               string
		size               int
		publishers, perPub int
		readers            int
		stallEvery         int
		mustNotLose        bool
	}{
		{"lapping/size=2", 2, 4, 2000, 4, 7, false},
		{"lapping/size=8", 8, 4, 2000, 4, 3, false},
		{"lapping/size=64", 64, 3, 3000, 6, 5, false},
		{"lossless/size=16384", 1 << 14, 4, 2000, 4, 11, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := New[value](tc.size)
			total := uint64(tc.publishers * tc.perPub)
			var wg sync.WaitGroup
			for rid := 0; rid < tc.readers; rid++ {
				rd := newReader(r, 1)
				wg.Add(1)
				go func() {
					defer wg.Done()
					last := make([]int, tc.publishers)
					for rd.next <= total {
						e := rd.wait(t)
						if e == nil {
							return
						}
						v := e.Value
						if v.sum != checksum(v.publisher, v.n) {
							t.Errorf("torn entry %+v", v)
							return
						}
						if v.n <= last[v.publisher] {
							t.Errorf("publisher %d: %d after %d", v.publisher, v.n, last[v.publisher])
							return
						}
						last[v.publisher] = v.n
					}
					if rd.delivered+rd.missed != total {
						t.Errorf("delivered %d + missed %d != %d", rd.delivered, rd.missed, total)
					}
					if tc.mustNotLose && rd.missed != 0 {
						t.Errorf("missed %d with a ring larger than the stream", rd.missed)
					}
				}()
			}
			var publishers sync.WaitGroup
			for p := 0; p < tc.publishers; p++ {
				publishers.Add(1)
				go func() {
					defer publishers.Done()
					for n := 1; n <= tc.perPub; n++ {
						if n%tc.stallEvery != 0 {
							pub(r, "", newValue(p, n))
							continue
						}
						// A slow publisher: descheduled between claim and store.
						e := claim(r, "", newValue(p, n))
						runtime.Gosched()
						r.storeClaimed(e)
					}
				}()
			}
			publishers.Wait()
			wg.Wait()
			if h := r.Head(); h != total {
				t.Errorf("head %d, want %d", h, total)
			}
		})
	}
}

// Entries come from chunks of consecutive sequences; a publisher so late
// that its block's place was taken by a newer block publishes nothing, and
// one whose chunk was abandoned after it took its entry still stores it (a
// reader holding that chunk may read it; one that does not counts it missed).
func TestChunks(t *testing.T) {
	r := New[int](1 << 12)
	per := uint64(1) << r.chunkShift
	if per < 2 || per > maxChunkLen {
		t.Fatalf("%d entries per chunk", per)
	}
	early := claim(r, "", 1)                    // took its place in block 0's chunk
	lateSeq, _ := r.claim(context.Background()) // claimed, has not asked for its place yet
	total := 2 + per*r.places()                 // block 0's place is taken again
	for i := uint64(3); i <= total; i++ {
		pub(r, "", int(i))
	}
	if c := r.chunkOf(lateSeq >> r.chunkShift); c != nil {
		t.Fatalf("late publisher got a chunk")
	}
	if c := r.byBlock[0].Load(); c.tag.Load()>>tagShift == 0 {
		t.Fatalf("block 0 still in the table")
	}
	r.storeClaimed(early) // lapped: dropped
	rd := newReader(r, 1)
	e := rd.read(t)
	if want := total - uint64(r.Size()) + 1; e == nil || e.Seq != want || e.Value != int(want) {
		t.Fatalf("read %+v, want seq %d", e, want)
	}
	for want := e.Seq + 1; want <= total; want++ {
		e := rd.read(t)
		if e == nil || e.Seq != want || e.Value != int(want) {
			t.Fatalf("read %+v, want seq %d", e, want)
		}
	}
}

// With no reader, a ring publishing 100,000 entries cycles through a
// bounded set of chunks.
func TestChunksAreReused(t *testing.T) {
	r := New[benchValue](1024)
	seen := map[*chunk[benchValue]]bool{}
	per := uint64(1) << r.chunkShift
	for i := 0; i < 100000; i++ {
		seq, _ := r.Publish(context.Background(), nil, benchValue{})
		if seq%per == 0 {
			seen[r.place(seq/per).Load()] = true
		}
	}
	if n := uint64(len(seen)); n > r.places()+2 {
		t.Errorf("%d distinct chunks with a table of %d", n, r.places())
	}
	t.Logf("chunk of %d entries, table of %d, %d distinct chunks", per, r.places(), len(seen))
}

// The hot words of a ring sit on cache lines of their own, and the slots
// array of a ring of 1,024 (no pointers, so no allocation header) fills the
// 8 KiB size class.
func TestLayout(t *testing.T) {
	var r Ring[int]
	head, waiters := unsafe.Offsetof(r.head), unsafe.Offsetof(r.waiters)
	if head < CacheLineSize || waiters-head < CacheLineSize || unsafe.Offsetof(r.mask)-waiters < CacheLineSize {
		t.Errorf("head at %d, waiters at %d, mask at %d: not a line apart", head, waiters, unsafe.Offsetof(r.mask))
	}
	var g Gate
	if c := unsafe.Offsetof(g.cursor); c < CacheLineSize || unsafe.Offsetof(g.g)-c < CacheLineSize {
		t.Errorf("gate cursor at %d, next field at %d", c, unsafe.Offsetof(g.g))
	}
	r.Init(1024)
	if got := len(r.slots) * 8; got > 8192 {
		t.Errorf("slots array of %d bytes exceeds 8 KiB", got)
	}
	if r.Size() != 1024 {
		t.Errorf("Size %d", r.Size())
	}
}

// ReadRun hands out, from where Read would start, every entry stored
// without a gap up to the end of its chunk, and no further: not past the
// head, not past a stalled publisher's sequence, not into the next chunk.
func TestReadRun(t *testing.T) {
	r := New[int](64)
	per := uint64(1) << r.chunkShift
	if per < 4 {
		t.Fatalf("%d entries per chunk; the test needs 4 at least", per)
	}
	var cur Cursor[int]
	defer cur.Release()
	if run, _ := r.ReadRun(&cur, 1); run != nil {
		t.Fatalf("run %v from an empty ring", run)
	}
	check := func(next uint64, wantSeq uint64, wantLen int) {
		t.Helper()
		run, seq := r.ReadRun(&cur, next)
		if seq != wantSeq || len(run) != wantLen {
			t.Fatalf("ReadRun(%d) = %d entries from %d, want %d from %d", next, len(run), seq, wantLen, wantSeq)
		}
		for i := range run {
			if run[i].Value != int(seq)+i {
				t.Fatalf("entry %d of the run from %d holds %d", i, seq, run[i].Value)
			}
		}
	}
	// 1 … per-2 stored, per-1 claimed and stalled, per and beyond stored.
	for i := uint64(1); i < per-1; i++ {
		pub(r, "", int(i))
	}
	stalled := claim(r, "", int(per-1))
	for i := per; i <= per+3; i++ {
		pub(r, "", int(i))
	}
	check(1, 1, int(per-2)) // up to the stalled one
	check(3, 3, int(per-4)) // from anywhere
	r.storeClaimed(stalled) // the gap is filled
	check(1, 1, int(per-1)) // up to the end of the chunk (block 0 has no sequence 0)
	check(per, per, 4)      // the next chunk, up to the head
	check(per+2, per+2, 2)  // from within it
	if run, _ := r.ReadRun(&cur, per+4); run != nil {
		t.Fatalf("run %v past the head", run)
	}
	// Lapped: the run starts at the oldest entry held, as Read's does.
	for i := per + 4; i <= per+4+64; i++ {
		pub(r, "", int(i))
	}
	oldest := per + 4 + 64 - 64 + 1
	check(1, oldest, int(per-oldest%per))
}

// ReadHeld finds an entry only when it is stored and in the chunk the
// cursor holds; Read finds the rest.
func TestReadHeld(t *testing.T) {
	r := New[int](64)
	per := uint64(1) << r.chunkShift
	var cur Cursor[int]
	defer cur.Release()
	for i := uint64(1); i <= per+1; i++ {
		pub(r, "", int(i))
	}
	if e := r.ReadHeld(&cur, 1); e != nil {
		t.Fatalf("ReadHeld found %d holding no chunk", e.Value)
	}
	if e, _ := r.Read(&cur, 1); e == nil || e.Value != 1 {
		t.Fatalf("Read(1) = %v", e)
	}
	for i := uint64(2); i < per; i++ {
		if e := r.ReadHeld(&cur, i); e == nil || e.Value != int(i) {
			t.Fatalf("ReadHeld(%d) = %v", i, e)
		}
	}
	if e := r.ReadHeld(&cur, per); e != nil {
		t.Fatalf("ReadHeld found %d in the next chunk", e.Value)
	}
	if e, _ := r.Read(&cur, per); e == nil || e.Value != int(per) {
		t.Fatalf("Read(%d) = %v", per, e)
	}
	if e := r.ReadHeld(&cur, per+2); e != nil {
		t.Fatalf("ReadHeld found %d past the head", e.Value)
	}
	// Lapped: the slot holds a newer sequence, which ReadHeld leaves to Read.
	for i := per + 2; i <= per+2+64; i++ {
		pub(r, "", int(i))
	}
	if e := r.ReadHeld(&cur, per+1); e != nil {
		t.Fatalf("ReadHeld found %d for a lapped sequence", e.Value)
	}
}
