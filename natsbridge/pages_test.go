package natsbridge_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/internal/history"
)

// A pageRecorder records a run in which topics change pages (a server
// dies), which history.Check does not allow for, and checks it: every
// subscriber sees the same item at the same page and sequence, pages and
// sequences only grow, loss is exact, and no publish that succeeded is lost
// unless it returned before the page it was on ended.
type pageRecorder struct {
	clock atomic.Uint64
	mu    sync.Mutex
	pubs  []*pagePublisher
	subs  []*pageSubscriber
}

type pagePublisher struct {
	r      *pageRecorder
	id     uint32
	n      uint64
	buf    []byte
	events []pubEvent
}

type pubEvent struct {
	n         uint64
	call, ret uint64
	err       error
}

type pageSubscriber struct {
	name  string
	sub   *topics.Subscription[topics.Value]
	items []recvItem
}

type recvItem struct {
	topics.Item[topics.Value]
	tick uint64
}

func (r *pageRecorder) tick() uint64 { return r.clock.Add(1) }

func (r *pageRecorder) publisher() *pagePublisher {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &pagePublisher{r: r, id: uint32(len(r.pubs) + 1), buf: make([]byte, 32)}
	r.pubs = append(r.pubs, p)
	return p
}

func (r *pageRecorder) subscriber(name string, s *topics.Subscription[topics.Value]) *pageSubscriber {
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := &pageSubscriber{name: name, sub: s}
	r.subs = append(r.subs, ps)
	return ps
}

// publish publishes the publisher's next payload and records how it went.
func (p *pagePublisher) publish(ctx context.Context, c *topics.Cache, topic string) (n uint64, err error) {
	p.n++
	history.EncodePayload(p.buf, p.id, p.n)
	call := p.r.tick()
	err = c.Publish(ctx, topic, p.buf)
	p.events = append(p.events, pubEvent{n: p.n, call: call, ret: p.r.tick(), err: err})
	return p.n, err
}

// readUntil reads until the subscriber has received publish n of publisher
// id.
func (s *pageSubscriber) readUntil(ctx context.Context, r *pageRecorder, id uint32, n uint64) error {
	for {
		it, err := s.sub.Next(ctx)
		if err != nil {
			return fmt.Errorf("%s, after %d items: %w", s.name, len(s.items), err)
		}
		s.items = append(s.items, recvItem{it, r.tick()})
		if p, c, ok := history.DecodePayload(it.Value.Bytes()); ok && p == id && c == n {
			return nil
		}
	}
}

// readAll starts reading every subscriber, each until it receives the one
// item of closer (see finish): readers keep up while publishers publish.
func (r *pageRecorder) readAll(ctx context.Context, subs []*pageSubscriber, closer *pagePublisher) *errGroup {
	g := &errGroup{}
	for _, s := range subs {
		g.run(func() error { return s.readUntil(ctx, r, closer.id, 1) })
	}
	return g
}

// finish publishes the one item of closer, the last of the run, trying
// until it succeeds.
func finish(ctx context.Context, closer *pagePublisher, c *topics.Cache, topic string) error {
	return poll(ctx, func() bool {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		closer.n = 0 // the same item again, if an attempt failed
		_, err := closer.publish(pctx, c, topic)
		return err == nil
	})
}

// check verifies the run. lostBefore is a tick taken just after the last
// page change was caused: a publish called after it that succeeded must
// reach every subscriber. (One called before may have been acknowledged by
// the server that died, and lost with its page.)
func (r *pageRecorder) check(t *testing.T, lostBefore uint64) {
	t.Helper()
	type key struct {
		pub uint32
		n   uint64
	}
	type place struct{ page, seq uint64 }
	pubs := make(map[key]pubEvent)
	for _, p := range r.pubs {
		for _, e := range p.events {
			pubs[key{p.id, e.n}] = e
		}
	}
	at := make(map[place]key)     // the item at each page and sequence
	placed := make(map[key]place) // and the other way round
	delivered := make(map[key]int)
	pages := make(map[uint64]bool)
	var lastPage uint64
	for _, s := range r.subs {
		for _, it := range s.items {
			lastPage = max(lastPage, it.Page)
		}
	}
	for _, s := range r.subs {
		var prev recvItem
		lastOf := make(map[uint32]uint64) // the last counter of each publisher
		for i, it := range s.items {
			where := fmt.Sprintf("%s, item %d (%d:%d)", s.name, i, it.Page, it.Sequence)
			pub, n, ok := history.DecodePayload(it.Value.Bytes())
			if !ok {
				t.Errorf("%s: torn payload %x", where, it.Value.Bytes())
				continue
			}
			k := key{pub, n}
			e, known := pubs[k]
			switch {
			case !known:
				t.Errorf("%s: carries p%d#%d, never published", where, pub, n)
			case it.tick <= e.call:
				t.Errorf("%s: received before it was published", where)
			}
			if it.Page == 0 || it.Page > topics.MaxPage {
				t.Errorf("%s: page out of range", where)
			}
			pages[it.Page] = true
			pl := place{it.Page, it.Sequence}
			if old, ok := at[pl]; ok && old != k {
				t.Errorf("%s: carries p%d#%d; another subscriber got p%d#%d there", where, pub, n, old.pub, old.n)
			}
			at[pl] = k
			if old, ok := placed[k]; ok && old != pl {
				t.Errorf("%s: p%d#%d was also delivered at %d:%d", where, pub, n, old.page, old.seq)
			}
			placed[k] = pl
			delivered[k]++
			if n <= lastOf[pub] {
				t.Errorf("%s: p%d#%d after p%d#%d: the publisher's order is broken", where, pub, n, pub, lastOf[pub])
			}
			lastOf[pub] = n
			switch {
			case i == 0:
			case it.Page < prev.Page:
				t.Errorf("%s: page went back from %d", where, prev.Page)
			case it.Page == prev.Page && it.Sequence <= prev.Sequence:
				t.Errorf("%s: sequence did not grow from %d", where, prev.Sequence)
			case it.Page == prev.Page && it.Missed != it.Sequence-prev.Sequence-1:
				t.Errorf("%s: Missed %d after %d", where, it.Missed, prev.Sequence)
			case it.Page > prev.Page && it.Missed != it.Sequence-1:
				t.Errorf("%s: the first item of a page: Missed %d", where, it.Missed)
			}
			if it.Missed != 0 && it.Page == lastPage {
				// On earlier pages, a process whose server died loses
				// what it had not received (the stream is gone); on the
				// last one, the stream lives and the process fetches it.
				t.Errorf("%s: Missed %d on the last page, but every subscriber keeps up and every process fetches what it missed", where, it.Missed)
			}
			prev = it
		}
	}
	for k, e := range pubs {
		if e.err == nil && e.call > lostBefore && delivered[k] != len(r.subs) {
			t.Errorf("p%d#%d was published after the last page change but reached %d of %d subscribers", k.pub, k.n, delivered[k], len(r.subs))
		}
	}
	var failed, lost int
	for k, e := range pubs {
		if e.err != nil {
			failed++
		} else if delivered[k] == 0 {
			lost++
		}
	}
	t.Logf("%d publishes (%d failed, %d lost with a page), %d pages, %d subscribers", len(pubs), failed, lost, len(pages), len(r.subs))
}
