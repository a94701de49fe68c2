package table

import (
	"fmt"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStoreLoadDelete(t *testing.T) {
	var tb Table[int]
	if _, ok := tb.Load("x"); ok {
		t.Fatal("empty table found x")
	}
	if tb.Delete("x") {
		t.Fatal("empty table deleted x")
	}
	const n = 5000 // grows several times
	for i := range n {
		tb.Store(fmt.Sprint("k", i), i)
	}
	tb.Store("k7", -7) // replace
	if tb.Len() != n {
		t.Fatalf("Len %d, want %d", tb.Len(), n)
	}
	for i := range n {
		want := i
		if i == 7 {
			want = -7
		}
		if v, ok := tb.Load(fmt.Sprint("k", i)); !ok || v != want {
			t.Fatalf("k%d: %d %v", i, v, ok)
		}
	}
	for i := 0; i < n; i += 2 {
		if !tb.Delete(fmt.Sprint("k", i)) {
			t.Fatalf("k%d not deleted", i)
		}
	}
	if tb.Len() != n/2 {
		t.Fatalf("Len %d after deletes", tb.Len())
	}
	seen := map[string]int{}
	tb.Range(func(k string, v int) bool { seen[k] = v; return true })
	if len(seen) != n/2 {
		t.Fatalf("Range saw %d", len(seen))
	}
	for i := range n {
		_, ok := tb.Load(fmt.Sprint("k", i))
		if ok != (i%2 == 1) {
			t.Fatalf("k%d present %v", i, ok)
		}
	}
	count := 0
	tb.Range(func(string, int) bool { count++; return count < 3 })
	if count != 3 {
		t.Fatalf("Range did not stop: %d", count)
	}
}

// Readers never miss a key that was stored before they started and not
// deleted, while a writer stores, deletes and grows the table.
func TestConcurrentReaders(t *testing.T) {
	var tb Table[int]
	const stable = 100
	for i := range stable {
		tb.Store(fmt.Sprint("stable", i), i)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (j + r) % stable
				if v, ok := tb.Load(fmt.Sprint("stable", k)); !ok || v != k {
					t.Errorf("stable%d: %d %v", k, v, ok)
					return
				}
				if v, ok := tb.Load(fmt.Sprint("churn", j%3000)); ok && v != j%3000 {
					t.Errorf("churn%d holds %d", j%3000, v)
					return
				}
			}
		}()
	}
	for i := range 3000 {
		tb.Store(fmt.Sprint("churn", i), i)
		if i%3 == 0 {
			tb.Delete(fmt.Sprint("churn", i/2))
		}
	}
	close(stop)
	wg.Wait()
}

func BenchmarkLoad(b *testing.B) {
	var tb Table[any]
	var sm sync.Map
	for i := range 1000 {
		tb.Store(fmt.Sprint("topic/", i), i)
		sm.Store(fmt.Sprint("topic/", i), i)
	}
	b.Run("table", func(b *testing.B) {
		for b.Loop() {
			tb.Load("topic/500")
		}
	})
	b.Run("sync.Map", func(b *testing.B) {
		for b.Loop() {
			sm.Load("topic/500")
		}
	})
}
