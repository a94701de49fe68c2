package natsbridge

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// A progress is how far a feed has put its topic's items, for publishers of
// the same process to wait on: a Publish returns once its item is in this
// process's ring, if the topic has one, so that a subscription opened after
// Publish returned starts after the item, as it does in one process.
//
// One goroutine (the feed's) advances it; any number wait. The position is
// a seqlock: version is odd while page and item are written. Waiters
// register under mu, then check the position; the feed, having advanced
// it, wakes them under mu if any are counted in waiting. Either the
// waiter's check sees the new position, or the feed sees the waiter.
type progress struct {
	version    atomic.Uint64
	page, item atomic.Uint64

	waiting atomic.Int32 // registered waiters
	mu      sync.Mutex
	waiters []*waiter // under mu
	ended   bool      // under mu: no more progress
}

type waiter struct {
	page, item uint64
	ch         chan struct{} // closed when reached
}

// advance records that item of page was put. Only the feed calls it.
func (p *progress) advance(page, item uint64) {
	p.version.Add(1)
	p.page.Store(page)
	p.item.Store(item)
	p.version.Add(1)
	if p.waiting.Load() > 0 {
		p.wake(false)
	}
}

// end wakes every waiter for good.
func (p *progress) end() { p.wake(true) }

func (p *progress) wake(end bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ended = p.ended || end
	kept := p.waiters[:0]
	for _, w := range p.waiters {
		if p.ended || p.reached(w.page, w.item) {
			close(w.ch)
			p.waiting.Add(-1)
		} else {
			kept = append(kept, w)
		}
	}
	clear(p.waiters[len(kept):])
	p.waiters = kept
}

// reached reports whether the feed has put item of page, or moved beyond.
func (p *progress) reached(page, item uint64) bool {
	for {
		v := p.version.Load()
		if v%2 == 1 {
			runtime.Gosched() // being written: a few instructions
			continue
		}
		pg, it := p.page.Load(), p.item.Load()
		if p.version.Load() == v {
			return pg > page || pg == page && it >= item
		}
	}
}

// await waits until the feed has put item of page or moved beyond, the feed
// has ended, or ctx is done.
func (p *progress) await(ctx context.Context, page, item uint64) {
	if p.reached(page, item) {
		return
	}
	w := &waiter{page: page, item: item, ch: make(chan struct{})}
	p.mu.Lock()
	p.waiting.Add(1) // before the check: see the type's comment
	if p.ended || p.reached(page, item) {
		p.waiting.Add(-1)
		p.mu.Unlock()
		return
	}
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()
	select {
	case <-w.ch:
	case <-ctx.Done():
		p.mu.Lock()
		for i, x := range p.waiters {
			if x == w {
				p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
				p.waiting.Add(-1)
				break
			}
		}
		p.mu.Unlock()
	}
}
