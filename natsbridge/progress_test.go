package natsbridge

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestProgress(t *testing.T) {
	var p progress
	p.advance(5, 3)
	assert.True(t, p.reached(5, 3))
	assert.True(t, p.reached(4, 100), "an older page is behind")
	assert.False(t, p.reached(5, 4))
	assert.False(t, p.reached(6, 1))
	p.await(t.Context(), 5, 2) // reached: returns at once

	done := make(chan struct{})
	go func() {
		p.await(context.Background(), 6, 1)
		close(done)
	}()
	p.advance(5, 9)
	select {
	case <-done:
		t.Fatal("returned before the feed reached its item")
	case <-time.After(10 * time.Millisecond):
	}
	p.advance(7, 1) // a later page: beyond it
	<-done

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p.await(ctx, 100, 1) // ctx done: returns
	assert.Zero(t, p.waiting.Load(), "a waiter whose context ended is removed")

	go p.end()
	p.await(context.Background(), 100, 1) // the feed ended: returns
}

// TestProgressRace: many waiters while the feed advances; none is left
// waiting once the feed has passed its item.
func TestProgressRace(t *testing.T) {
	var p progress
	const items = 2000
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := uint64(w + 1); i <= items; i += 8 {
				p.await(context.Background(), 1, i)
				if !p.reached(1, i) {
					t.Errorf("await(1, %d) returned before the feed reached it", i)
					return
				}
			}
		})
	}
	for i := uint64(1); i <= items; i++ {
		p.advance(1, i)
	}
	wg.Wait()
	assert.Zero(t, p.waiting.Load())
}
