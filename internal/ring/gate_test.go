package ring

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// newGatedReader adds a gate for a reader that starts after the head.
func newGatedReader[T any](r *Ring[T]) *reader[T] {
	gate, start := r.AddGate(func(head uint64) uint64 { return head + 1 })
	rd := newReader(r, start)
	rd.gate = gate
	return rd
}

func TestGateHoldsPublisherUntilRead(t *testing.T) {
	const size = 4
	r := New[int](size)
	rd := newGatedReader(r)
	for i := 1; i <= size; i++ {
		pub(r, "", i) // fills the ring: nothing unread is overwritten yet
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.Publish(ctx, nil, 99); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish into a full gated ring: %v", err)
	}
	if h := r.Head(); h != size {
		t.Fatalf("a refused publish claimed a sequence: head %d", h)
	}

	done := make(chan uint64)
	go func() { done <- pub(r, "", size+1) }()
	if e := rd.read(t); e == nil || e.Seq != 1 {
		t.Fatalf("read %+v", e)
	}
	select {
	case seq := <-done:
		if seq != size+1 {
			t.Fatalf("released publisher got seq %d", seq)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("publisher not released when the gated reader advanced")
	}
	for want := uint64(2); want <= size+1; want++ {
		if e := rd.read(t); e == nil || e.Seq != want {
			t.Fatalf("read %+v, want %d", e, want)
		}
	}
	if rd.missed != 0 {
		t.Fatalf("gated reader missed %d", rd.missed)
	}
}

func TestRemoveGateReleasesPublisher(t *testing.T) {
	r := New[int](2)
	rd := newGatedReader(r)
	pub(r, "", 1)
	pub(r, "", 2)
	done := make(chan uint64)
	go func() { done <- pub(r, "", 3) }()
	r.RemoveGate(rd.gate)
	r.RemoveGate(rd.gate) // idempotent
	select {
	case seq := <-done:
		if seq != 3 {
			t.Fatalf("seq %d", seq)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RemoveGate did not release the publisher")
	}
	if r.head.Load()&gatedFlag != 0 {
		t.Fatal("gated flag still set with no gates")
	}
}

// The cursor of a gate added for a reader that resumes before the oldest
// held entry starts at the oldest held entry: publishers are not held back
// for entries already gone.
func TestGateStartsAtOldestHeld(t *testing.T) {
	const size = 4
	r := New[int](size)
	for i := 1; i <= 10; i++ {
		pub(r, "", i)
	}
	gate, start := r.AddGate(func(uint64) uint64 { return 2 })
	if start != 2 || gate.cursor.Load() != 7 {
		t.Fatalf("start %d cursor %d; want 2 and 7", start, gate.cursor.Load())
	}
	rd := newReader(r, start)
	rd.gate = gate
	if e := rd.read(t); e == nil || e.Seq != 7 || rd.missed != 5 {
		t.Fatalf("first read %+v after missing %d", e, rd.missed)
	}
	r.RemoveGate(gate)
}

// Gated readers lose nothing while ungated readers of the same ring lose
// what they must, with several publishers and rings as small as 1.
func TestGatedAndUngatedReaders(t *testing.T) {
	for _, size := range []int{1, 2, 8} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			r := New[value](size)
			const publishers, perPub = 3, 1500
			total := uint64(publishers * perPub)
			var readers sync.WaitGroup
			check := func(rd *reader[value], slow, lossless bool) {
				defer readers.Done()
				if rd.gate != nil {
					defer r.RemoveGate(rd.gate)
				}
				last := make([]int, publishers)
				for rd.next <= total {
					e := rd.wait(t)
					if e == nil {
						return
					}
					v := e.Value
					if v.sum != checksum(v.publisher, v.n) || v.n <= last[v.publisher] {
						t.Errorf("bad entry %+v after %d", v, last[v.publisher])
						return
					}
					last[v.publisher] = v.n
					if slow && e.Seq%7 == 0 {
						runtime.Gosched()
					}
				}
				if rd.delivered+rd.missed != total {
					t.Errorf("delivered %d + missed %d != %d", rd.delivered, rd.missed, total)
				}
				if lossless && rd.missed != 0 {
					t.Errorf("lossless reader missed %d", rd.missed)
				}
			}
			for i := range 2 {
				readers.Add(2)
				go check(newGatedReader(r), i == 0, true)
				go check(newReader(r, 1), true, false)
			}
			var pubs sync.WaitGroup
			for p := range publishers {
				pubs.Add(1)
				go func() {
					defer pubs.Done()
					for n := 1; n <= perPub; n++ {
						pub(r, "", newValue(p, n))
					}
				}()
			}
			pubs.Wait()
			readers.Wait()
		})
	}
}

// A gate added while publishers run takes effect exactly at the start it
// returns: its reader misses nothing after it, even in a ring of one, and
// also when another gated reader keeps the ring gated throughout.
func TestAddGateWhilePublishing(t *testing.T) {
	for _, size := range []int{1, 2, 4} {
		for _, background := range []bool{false, true} {
			t.Run(fmt.Sprintf("size=%d/background=%v", size, background), func(t *testing.T) {
				r := New[int](size)
				stop := make(chan struct{})
				var workers sync.WaitGroup
				for range 2 {
					workers.Add(1)
					go func() {
						defer workers.Done()
						for {
							select {
							case <-stop:
								return
							default:
							}
							ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
							_, _ = r.Publish(ctx, nil, 0)
							cancel()
						}
					}()
				}
				if background {
					bg := newGatedReader(r)
					workers.Add(1)
					go func() {
						defer workers.Done()
						defer r.RemoveGate(bg.gate)
						for {
							select {
							case <-stop:
								return
							default:
							}
							if bg.read(t) == nil {
								runtime.Gosched()
							}
						}
					}()
				}
				for range 300 {
					rd := newGatedReader(r)
					for range 3 * size {
						if rd.wait(t) == nil {
							break
						}
					}
					r.RemoveGate(rd.gate)
					if rd.missed != 0 {
						t.Errorf("gated reader missed %d", rd.missed)
						break
					}
				}
				close(stop)
				workers.Wait()
			})
		}
	}
}
