package topics_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringbus/topics"
)

var lifecycleSeed = flag.Uint64("seed", 0, "TestStressLifecycle: run only this seed (0: seeds 1 to N)")

// Scenario 4: a seeded random lifecycle. Workers publish, subscribe, read
// with cancelled contexts, break out of All, close subscriptions (their own
// and each other's), cancel Subscribe contexts, close and delete caches and
// close the engine, all at once. Each seed must finish without a panic, a
// hang or a leaked goroutine, every call must fail only in the ways its
// documentation allows, and every subscription must see increasing
// sequences with consistent Missed counts.
//
// A failing seed is printed and can be replayed with
//
//	go test -run 'TestStressLifecycle$' -seed=N .
//
// which makes the same random choices (the interleaving of the workers is
// up to the scheduler, so a rare failure may need -count).
func TestStressLifecycle(t *testing.T) {
	first, last := uint64(1), uint64(sizes.lifecycleSeeds)
	if *lifecycleSeed != 0 {
		first, last = *lifecycleSeed, *lifecycleSeed
	}
	start := time.Now()
	var sum lcStats
	for seed := first; seed <= last; seed++ {
		st, err := runLifecycle(seed, sizes.lifecycleOps)
		if err != nil {
			t.Fatalf("seed %d failed: %v\n\nreplay with: go test -run 'TestStressLifecycle$' -seed=%d .", seed, err, seed)
		}
		sum.ops += st.ops
		sum.succeeded += st.succeeded
		sum.refused += st.refused
		sum.received += st.received
	}
	t.Logf("seeds %d..%d in %v: %d operations drawn; %d calls succeeded, %d refused as documented; %d items received",
		first, last, time.Since(start).Round(time.Millisecond), sum.ops, sum.succeeded, sum.refused, sum.received)
}

const (
	lcOpLimit    = 10 * time.Second // for one call that must return promptly
	lcSeedLimit  = 60 * time.Second // for all the workers of one seed
	lcTraceDepth = 40               // operations remembered per worker
)

// A lifecycle is one seed's run.
type lifecycle struct {
	seed   uint64
	e      *topics.Engine
	caches []string
	topics []string

	// What the run did, for the log: calls that succeeded, calls refused
	// (as documented), items received.
	succeeded, refused, received atomic.Int64

	mu       sync.Mutex
	subs     []*lcSub             // every subscription, for Close from any worker
	cancels  []context.CancelFunc // Subscribe contexts, for any worker to cancel
	failures []string
}

func (lc *lifecycle) fail(format string, args ...any) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.failures = append(lc.failures, fmt.Sprintf(format, args...))
}

// An lcSub is a subscription and what its reader has seen. Only the worker
// that created it reads it (or a goroutine it waits for); any worker may
// close it.
type lcSub struct {
	sub   *topics.Subscription[topics.Value]
	cache *topics.Cache
	topic string
	prev  uint64 // last sequence received
	page  uint64
	ended error // the error that ended it, once seen

	cancel context.CancelFunc // cancels its Subscribe context; nil if none
}

// lcStats sums what the seeds did.
type lcStats struct {
	ops, succeeded, refused, received int64
}

// runLifecycle runs one seed and returns what it did and what went wrong.
func runLifecycle(seed uint64, opsPerWorker int) (lcStats, error) {
	leakBaseline := goleak.IgnoreCurrent()
	rng := rand.New(rand.NewPCG(seed, 0))
	var opts []topics.Option
	opts = append(opts, topics.WithRingSize([]int{1, 2, 4, 8, 64}[rng.IntN(5)]))
	if rng.IntN(2) == 0 {
		opts = append(opts, topics.WithTopicIdleTimeout(time.Millisecond)) // the sweeper at work
	}
	if rng.IntN(3) == 0 {
		opts = append(opts, topics.WithMaxTopics(2))
	}
	if rng.IntN(3) == 0 {
		opts = append(opts, topics.WithMaxSubscribers(3))
	}
	lc := &lifecycle{
		seed:   seed,
		e:      topics.New(opts...),
		caches: []string{"c0", "c1"},
		topics: []string{"t0", "t1", "t2"},
	}
	workers := 2 + rng.IntN(4)
	traces := make([]*trace, workers)
	var wg sync.WaitGroup
	for w := range workers {
		traces[w] = &trace{}
		wg.Go(func() {
			defer func() {
				if p := recover(); p != nil {
					lc.fail("worker %d panicked: %v\n%s", w, p, debug.Stack())
				}
			}()
			lc.worker(w, rand.New(rand.NewPCG(seed, uint64(w)+1)), opsPerWorker, traces[w])
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(lcSeedLimit):
		// A hang: report it with every goroutine, then try to release the
		// workers so that the test can end.
		lc.fail("workers still running after %v; goroutines:\n%s", lcSeedLimit, goroutines())
		lc.e.Close()
		lc.cancelAll()
		select {
		case <-done:
		case <-time.After(lcSeedLimit):
			return lcStats{}, lc.result(traces)
		}
	}

	// Shut everything down: every subscription must then report its end.
	lc.e.Close()
	lc.cancelAll()
	for i, s := range lc.subs {
		lc.call(-1, "Next after Engine.Close", func(ctx context.Context) {
			if _, err := s.sub.Next(ctx); !errors.Is(err, topics.ErrClosed) {
				lc.fail("subscription %d after Engine.Close: Next returned %v, want ErrClosed", i, err)
			}
		})
	}
	if err := goleak.Find(leakBaseline); err != nil {
		lc.fail("leaked goroutines: %v", err)
	}
	return lcStats{int64(workers * opsPerWorker), lc.succeeded.Load(), lc.refused.Load(), lc.received.Load()}, lc.result(traces)
}

func (lc *lifecycle) cancelAll() {
	lc.mu.Lock()
	cancels := lc.cancels
	lc.mu.Unlock()
	for _, cancel := range cancels {
		cancel()
	}
}

func (lc *lifecycle) result(traces []*trace) error {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if len(lc.failures) == 0 {
		return nil
	}
	var b strings.Builder
	for _, f := range lc.failures {
		b.WriteString(f)
		b.WriteString("\n")
	}
	for w, tr := range traces {
		fmt.Fprintf(&b, "worker %d, last operations: %s\n", w, strings.Join(tr.last(), "; "))
	}
	return errors.New(b.String())
}

// A trace remembers a worker's last operations, for a failure report.
type trace struct {
	ops []string
	n   int
}

func (tr *trace) add(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if len(tr.ops) < lcTraceDepth {
		tr.ops = append(tr.ops, s)
	} else {
		tr.ops[tr.n%lcTraceDepth] = s
	}
	tr.n++
}

func (tr *trace) last() []string {
	if len(tr.ops) < lcTraceDepth {
		return tr.ops
	}
	i := tr.n % lcTraceDepth
	return append(append([]string{}, tr.ops[i:]...), tr.ops[:i]...)
}

// await waits until returned is closed. If that takes longer than
// lcOpLimit, it reports a hang and calls rescue to end it.
func (lc *lifecycle) await(w int, what string, returned <-chan struct{}, rescue func()) {
	select {
	case <-returned:
	case <-time.After(lcOpLimit):
		lc.fail("worker %d: %s did not return within %v; goroutines:\n%s", w, what, lcOpLimit, goroutines())
		rescue()
		<-returned
	}
}

// call runs f in a goroutine and awaits it; the context f gets is cancelled
// only to end a hang.
func (lc *lifecycle) call(w int, what string, f func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		f(ctx)
	}()
	lc.await(w, what, returned, cancel)
}

// A watchedContext tells when Next starts watching it, that is when Next
// is about to wait: Done is called then (and perhaps earlier, which only
// makes the test weaker).
type watchedContext struct {
	context.Context
	once     sync.Once
	watching chan struct{}
}

func watch(ctx context.Context) *watchedContext {
	return &watchedContext{Context: ctx, watching: make(chan struct{})}
}

func (c *watchedContext) Done() <-chan struct{} {
	c.once.Do(func() { close(c.watching) })
	return c.Context.Done()
}

// waiting returns once Next watches c, or once returned is ready (Next
// returned without waiting), or after lcOpLimit.
func (c *watchedContext) waiting(returned <-chan struct{}) {
	select {
	case <-c.watching:
	case <-returned:
	case <-time.After(lcOpLimit):
	}
}

// allowed reports whether err is nil or wraps one of the sentinels.
func allowed(err error, sentinels ...error) bool {
	if err == nil {
		return true
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func (lc *lifecycle) worker(w int, rng *rand.Rand, ops int, tr *trace) {
	handles := map[string]*topics.Cache{} // the caches this worker knows, by name
	var own []*lcSub
	var solo []*topics.Cache // standalone caches, closed at the end
	defer func() {
		for _, s := range own {
			s.sub.Close()
		}
		for _, c := range solo {
			c.Close()
		}
	}()
	check := func(op string, err error, sentinels ...error) bool {
		if !allowed(err, sentinels...) {
			lc.fail("worker %d: %s: unexpected error %v", w, op, err)
			return false
		}
		if err != nil {
			lc.refused.Add(1)
			return false
		}
		lc.succeeded.Add(1)
		return true
	}
	// handle returns a cache of that name: the one this worker used last
	// (perhaps closed or deleted meanwhile) or, if that one was found
	// closed, the engine's current one, created if need be. It returns nil
	// if there is none (the engine is closed).
	handle := func(name string) *topics.Cache {
		if c := handles[name]; c != nil {
			return c
		}
		c, err := lc.e.Cache(name)
		if errors.Is(err, topics.ErrCacheNotFound) {
			c, err = lc.e.CreateCache(name)
			if errors.Is(err, topics.ErrCacheExists) { // created meanwhile
				c, err = lc.e.Cache(name)
			}
		}
		if check("Engine.Cache/CreateCache "+name, err, topics.ErrCacheNotFound, topics.ErrCacheExists, topics.ErrClosed) {
			handles[name] = c
		}
		return c
	}
	// stale forgets the worker's handle on a cache once a call on it says
	// it is closed.
	stale := func(name string, err error) {
		if errors.Is(err, topics.ErrClosed) {
			delete(handles, name)
		}
	}
	// Errors any Value publish or subscribe may meet in this scenario.
	usageErrs := []error{topics.ErrClosed, topics.ErrTopicType, topics.ErrLimitExceeded, context.Canceled}

	for i := range ops {
		late := i >= ops*9/10 // the engine may close only in the last tenth
		// Draw the same random numbers whatever happens, so that a seed
		// makes the same choices when it is replayed.
		op, a, b := rng.IntN(100), rng.Uint64(), rng.Uint64()
		cacheName := lc.caches[a%uint64(len(lc.caches))]
		topic := lc.topics[b%uint64(len(lc.topics))]
		// Operations go to subscriptions not yet seen to end (the ended
		// ones stay in lc.subs for the final check).
		own = slices.DeleteFunc(own, func(s *lcSub) bool { return s.ended != nil })
		var sub *lcSub
		if len(own) > 0 {
			sub = own[(a>>8)%uint64(len(own))]
		}
		switch {
		case op < 5:
			tr.add("CreateCache %s", cacheName)
			var cacheOpts []topics.Option
			if b&1 == 0 {
				cacheOpts = append(cacheOpts, topics.WithRingSize(1<<(b>>1%4)))
			}
			c, err := lc.e.CreateCache(cacheName, cacheOpts...)
			if check("CreateCache", err, topics.ErrCacheExists, topics.ErrClosed) {
				handles[cacheName] = c
			}
		case op < 8:
			tr.add("Engine.Cache %s", cacheName)
			delete(handles, cacheName)
			handle(cacheName)
		case op < 30:
			c := handle(cacheName)
			if c == nil {
				continue
			}
			ctx := context.Background()
			if b>>8%8 == 0 {
				ctx = cancelled()
			}
			tr.add("Publish %s/%s", cacheName, topic)
			err := c.PublishString(ctx, topic, fmt.Sprint(a))
			check("Publish", err, usageErrs...)
			stale(cacheName, err)
		case op < 45:
			c := handle(cacheName)
			if c == nil {
				continue
			}
			ctx := context.Background()
			var cancel context.CancelFunc
			switch b >> 8 % 4 {
			case 0:
				ctx, cancel = context.WithCancel(ctx)
			case 1:
				ctx = cancelled()
			}
			var subOpts []topics.SubscribeOption
			if b>>16%3 == 0 {
				page := uint64(0)
				if sub != nil {
					page = sub.page
				}
				subOpts = append(subOpts, topics.ResumeAt(page, a%8))
			}
			tr.add("Subscribe %s/%s", cacheName, topic)
			s, err := c.Subscribe(ctx, topic, subOpts...)
			stale(cacheName, err)
			if !check("Subscribe", err, topics.ErrClosed, topics.ErrTopicType, topics.ErrLimitExceeded, context.Canceled) {
				if cancel != nil {
					cancel()
				}
				continue
			}
			ls := &lcSub{sub: s, cache: c, topic: topic, cancel: cancel}
			own = append(own, ls)
			lc.mu.Lock()
			lc.subs = append(lc.subs, ls)
			if cancel != nil {
				lc.cancels = append(lc.cancels, cancel)
			}
			lc.mu.Unlock()
		case op < 53:
			if sub == nil {
				continue
			}
			tr.add("Next(cancelled) %s", sub.topic)
			lc.next(w, sub, cancelled(), true)
		case op < 65:
			// An item is ready: Next must return it (or the end) at once.
			if sub == nil {
				continue
			}
			tr.add("Publish+Next %s", sub.topic)
			// The publish may fail only if the subscription was closed (by
			// another worker): its topic may have been dropped meanwhile,
			// and re-created with another type or beyond MaxTopics.
			check("Publish before Next", sub.cache.PublishString(context.Background(), sub.topic, "ready"), usageErrs...)
			lc.call(w, "Next with an item ready", func(ctx context.Context) {
				lc.next(w, sub, ctx, false)
			})
		case op < 70:
			// A Next that waits, and whose context is cancelled meanwhile,
			// perhaps after a publish.
			if sub == nil {
				continue
			}
			tr.add("Next(cancel later) %s", sub.topic)
			ctx, cancel := context.WithCancel(context.Background())
			wctx := watch(ctx)
			returned := make(chan struct{})
			go func() {
				defer close(returned)
				lc.next(w, sub, wctx, true)
			}()
			if b&1 == 0 {
				check("Publish during Next", sub.cache.PublishString(context.Background(), sub.topic, "during"), usageErrs...)
			} else {
				wctx.waiting(returned) // so that the cancellation has to wake it
			}
			cancel()
			lc.await(w, "Next after its context's cancellation", returned, func() { sub.sub.Close() })
		case op < 75:
			// Break out of All: the subscription must be closed then.
			if sub == nil {
				continue
			}
			tr.add("All+break %s", sub.topic)
			ctx := context.Background()
			if b&1 == 0 {
				ctx = cancelled()
			} else {
				check("Publish before All", sub.cache.PublishString(ctx, sub.topic, "for All"), usageErrs...)
			}
			lc.call(w, "All", func(rescue context.Context) {
				ctx, stop := context.WithCancel(ctx)
				defer stop()
				defer context.AfterFunc(rescue, stop)()
				for it, err := range sub.sub.All(ctx) {
					if err != nil {
						if !allowed(err, topics.ErrClosed, context.Canceled) {
							lc.fail("worker %d: All yielded %v", w, err)
						}
						break
					}
					lc.item(w, sub, it)
					break
				}
			})
			lc.call(w, "Next after leaving All", func(ctx context.Context) {
				if _, err := sub.sub.Next(ctx); !errors.Is(err, topics.ErrClosed) {
					lc.fail("worker %d: Next after leaving All returned %v, want ErrClosed", w, err)
				}
			})
			sub.ended = topics.ErrClosed
		case op < 77:
			if sub == nil {
				continue
			}
			tr.add("Subscription.Close %s", sub.topic)
			check("Subscription.Close", sub.sub.Close())
		case op < 80:
			// A Next that waits until the subscription ends: the end must
			// wake it.
			if sub == nil {
				continue
			}
			how := "Subscription.Close"
			end := func() error { return sub.sub.Close() }
			switch {
			case b%4 == 1:
				how, end = "Cache.Close", sub.cache.Close
			case b%4 == 2 && sub.cancel != nil:
				how, end = "cancel", func() error { sub.cancel(); return nil }
			case b%4 == 3 && late && a%4 == 0:
				how, end = "Engine.Close", lc.e.Close
			}
			tr.add("Next until %s %s", how, sub.topic)
			ctx, cancel := context.WithCancel(context.Background())
			wctx := watch(ctx)
			returned := make(chan struct{})
			var nextErr error
			go func() {
				defer close(returned)
				for {
					var it topics.Item[topics.Value]
					if it, nextErr = sub.sub.Next(wctx); nextErr != nil {
						return
					}
					lc.item(w, sub, it)
				}
			}()
			wctx.waiting(returned) // so that the end has to wake it
			check(how, end())
			lc.await(w, "Next waiting across "+how, returned, cancel)
			if !errors.Is(nextErr, topics.ErrClosed) {
				lc.fail("worker %d: Next waiting across %s returned %v, want ErrClosed", w, how, nextErr)
			} else {
				sub.ended = nextErr
			}
			cancel()
		case op < 83:
			// Close somebody's subscription, perhaps while it reads.
			lc.mu.Lock()
			var victim *lcSub
			if len(lc.subs) > 0 {
				victim = lc.subs[(a>>8)%uint64(len(lc.subs))]
			}
			lc.mu.Unlock()
			if victim != nil {
				tr.add("close another's subscription to %s", victim.topic)
				check("Subscription.Close (another's)", victim.sub.Close())
			}
		case op < 86:
			lc.mu.Lock()
			var cancel context.CancelFunc
			if len(lc.cancels) > 0 {
				cancel = lc.cancels[(a>>8)%uint64(len(lc.cancels))]
			}
			lc.mu.Unlock()
			if cancel != nil {
				tr.add("cancel a Subscribe context")
				cancel()
			}
		case op < 88:
			if c := handle(cacheName); c != nil {
				tr.add("Cache.Close %s", cacheName)
				check("Cache.Close", c.Close())
			}
		case op < 90:
			tr.add("DeleteCache %s", cacheName)
			check("DeleteCache", lc.e.DeleteCache(cacheName), topics.ErrCacheNotFound, topics.ErrClosed)
		case op < 92:
			tr.add("ListCaches")
			for _, n := range lc.e.ListCaches() {
				if n != "c0" && n != "c1" {
					lc.fail("worker %d: ListCaches returned %q", w, n)
				}
			}
		case op < 96:
			// A typed topic on the same names: ErrTopicType is allowed.
			c := handle(cacheName)
			if c == nil {
				continue
			}
			tr.add("TopicOf[int] %s/%s", cacheName, topic)
			h, err := topics.TopicOf[int](c, topic)
			stale(cacheName, err)
			if !check("TopicOf", err, topics.ErrTopicType, topics.ErrClosed) {
				continue
			}
			check("typed Publish", h.Publish(context.Background(), int(a)), usageErrs...)
			s, err := h.Subscribe(context.Background())
			if check("typed Subscribe", err, usageErrs...) {
				if _, err := s.Next(cancelled()); !allowed(err, context.Canceled, topics.ErrClosed) || err == nil {
					lc.fail("worker %d: typed Next(cancelled) returned %v", w, err)
				}
				check("typed Close", s.Close())
			}
		case op < 98:
			tr.add("NewCache (standalone)")
			c, err := topics.NewCache(fmt.Sprintf("solo-%d", w), topics.WithRingSize(2))
			if check("NewCache", err) {
				solo = append(solo, c)
				check("standalone Publish", c.PublishString(context.Background(), topic, "x"))
				if a%2 == 0 {
					check("standalone Close", c.Close())
				}
			}
		default:
			if !late || a%4 != 0 {
				continue
			}
			tr.add("Engine.Close")
			check("Engine.Close", lc.e.Close())
		}
	}
}

// next calls Next on s and checks the outcome. mayBeCancelled says whether
// ctx may be (or become) done, so that context.Canceled is allowed.
func (lc *lifecycle) next(w int, s *lcSub, ctx context.Context, mayBeCancelled bool) {
	it, err := s.sub.Next(ctx)
	switch {
	case err == nil:
		if s.ended != nil {
			lc.fail("worker %d: Next returned item %d after the subscription ended with %v", w, it.Sequence, s.ended)
			return
		}
		lc.item(w, s, it)
	case errors.Is(err, topics.ErrClosed):
		s.ended = err
	case mayBeCancelled && errors.Is(err, context.Canceled):
		if s.ended != nil {
			lc.fail("worker %d: Next returned %v after the subscription ended with %v", w, err, s.ended)
		}
	default:
		lc.fail("worker %d: Next returned %v", w, err)
	}
}

// item checks an item against what the subscription saw before.
func (lc *lifecycle) item(w int, s *lcSub, it topics.Item[topics.Value]) {
	switch {
	case it.Topic != s.topic:
		lc.fail("worker %d: item of topic %q on a subscription to %q", w, it.Topic, s.topic)
	case s.page != 0 && it.Page != s.page:
		lc.fail("worker %d: page went from %d to %d", w, s.page, it.Page)
	case it.Sequence <= s.prev:
		lc.fail("worker %d: sequence %d after %d", w, it.Sequence, s.prev)
	case s.prev != 0 && it.Missed != it.Sequence-s.prev-1:
		lc.fail("worker %d: sequence %d after %d with Missed %d", w, it.Sequence, s.prev, it.Missed)
	case it.Missed >= it.Sequence:
		lc.fail("worker %d: sequence %d with Missed %d", w, it.Sequence, it.Missed)
	}
	s.prev, s.page = it.Sequence, it.Page
	lc.received.Add(1)
}
