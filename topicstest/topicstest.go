// Package topicstest provides helpers for testing code that uses package
// topics, in the spirit of net/http/httptest.
//
// NewCache and NewEngine return a cache or an engine that is closed when the
// test ends. A Recorder subscribes to a topic and collects its items on a
// goroutine of its own, so that a test can publish (or let the code under
// test publish) and then wait for what arrived:
//
//	func TestOrders(t *testing.T) {
//		cache := topicstest.NewCache(t)
//		orders, _ := topics.TopicOf[Order](cache, "orders")
//		rec := topicstest.NewRecorder(t, orders)
//
//		placeOrders(cache) // the code under test
//
//		items := rec.WaitFor(3) // fails the test after rec.Timeout
//		rec.AssertNoLoss()
//		rec.AssertSequential()
//		...
//	}
//
// A Recorder is lossless (topics.Lossless): it records every item, however
// small the ring, and a publisher that is a whole ring ahead of it waits for
// it rather than overwrite what it has not recorded. Since the Recorder
// appends each item and returns at once, such a wait is short, and the code
// under test runs as it would with a reader that keeps up. To test how code
// copes with a subscriber that falls behind and loses items, as production
// subscribers do, record with NewLossyRecorder instead: it never holds up a
// publisher, and AssertNoLoss reports what it lost.
//
// The helpers work inside testing/synctest bubbles, where the deadlines of
// waits run on the bubble's fake clock (a wait for something that never
// comes fails at once, instead of after Timeout of real time), and leave no
// goroutine behind: a Recorder stops when the test ends, before the cache it
// records is closed.
//
// Waits and assertions report failures through the TB they were given, as
// the testing package's t.Fatalf and t.Errorf do; waits must be called from
// the goroutine running the test.
package topicstest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ringbus/topics"
)

// DefaultTimeout is how long a Recorder's waits and Next wait before they
// fail the test.
const DefaultTimeout = 5 * time.Second

// TB is the part of testing.TB that this package uses: *testing.T,
// *testing.B and *testing.F satisfy it. Fatalf must not return (testing's
// calls runtime.Goexit).
type TB interface {
	Helper()
	Name() string
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// NewCache returns a standalone cache named after the test, closed when the
// test ends. An invalid option fails the test.
func NewCache(t TB, opts ...topics.Option) *topics.Cache {
	t.Helper()
	c, err := topics.NewCache(cacheName(t.Name()), opts...)
	if err != nil {
		t.Fatalf("topicstest: NewCache: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// NewEngine returns an engine, closed when the test ends. The options are
// the defaults of its caches; as with topics.New, an invalid one makes
// CreateCache fail.
func NewEngine(t TB, opts ...topics.Option) *topics.Engine {
	t.Helper()
	e := topics.New(opts...)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// cacheName turns a test's name into a valid cache name.
func cacheName(test string) string {
	b := []byte(test)
	for i, c := range b {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "topicstest"
	}
	return string(b[:min(len(b), topics.MaxNameLen)])
}

// Next reads the next item of s, failing the test if none comes within
// DefaultTimeout or the subscription ends.
func Next[T any](t TB, s *topics.Subscription[T]) topics.Item[T] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	it, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("topicstest: Next: no item within %v: %v", DefaultTimeout, err)
	}
	return it
}

// A Recorder subscribes to a topic and collects every item published to it
// after NewRecorder returns, on a goroutine of its own (a topics.Handler),
// until it is stopped. It stops when the test ends.
//
// Its methods are safe for concurrent use; the waits must be called from
// the goroutine running the test. Create one with NewRecorder,
// NewValueRecorder or NewLossyRecorder; the zero Recorder is not usable, and
// a Recorder must not be copied. The Recorders of the first two are
// lossless (see the package doc); one of NewLossyRecorder is a subscription
// like any other: if it falls more than the ring size behind, it misses
// items and AssertNoLoss says so.
type Recorder[T any] struct {
	// Timeout bounds WaitFor and WaitUntil. NewRecorder sets it to
	// DefaultTimeout; change it before waiting, from the test's goroutine.
	Timeout time.Duration

	t       TB
	topic   string
	handler *topics.Handler

	mu      sync.Mutex
	items   []topics.Item[T]
	changed chan struct{} // closed, and replaced, when an item arrives
}

// NewRecorder starts recording the typed topic, losslessly. The options are
// those of Subscribe (for example topics.ResumeAt); topics.Lossless is
// added to them. A failure to subscribe fails the test.
func NewRecorder[T any](t TB, topic *topics.Topic[T], opts ...topics.SubscribeOption) *Recorder[T] {
	t.Helper()
	r := newRecorder[T](t, topic.Name())
	h, err := topic.Handle(context.Background(), r.add, lossless(opts)...)
	return r.start(h, err)
}

// NewValueRecorder starts recording the untyped topic of the cache, the one
// Cache.Publish and Cache.PublishString publish to, losslessly, as
// NewRecorder does.
func NewValueRecorder(t TB, c *topics.Cache, topic string, opts ...topics.SubscribeOption) *Recorder[topics.Value] {
	t.Helper()
	r := newRecorder[topics.Value](t, topic)
	h, err := c.Handle(context.Background(), topic, r.add, lossless(opts)...)
	return r.start(h, err)
}

// NewLossyRecorder starts recording the typed topic as an ordinary
// subscriber: it never holds up a publisher, and misses items when it falls
// more than the ring size behind. To record an untyped topic this way, give
// it topics.TopicOf[topics.Value](cache, name).
func NewLossyRecorder[T any](t TB, topic *topics.Topic[T], opts ...topics.SubscribeOption) *Recorder[T] {
	t.Helper()
	r := newRecorder[T](t, topic.Name())
	h, err := topic.Handle(context.Background(), r.add, opts...)
	return r.start(h, err)
}

// lossless returns opts with topics.Lossless added, leaving the caller's
// slice alone.
func lossless(opts []topics.SubscribeOption) []topics.SubscribeOption {
	return append(slices.Clip(opts), topics.Lossless())
}

func newRecorder[T any](t TB, topic string) *Recorder[T] {
	return &Recorder[T]{Timeout: DefaultTimeout, t: t, topic: topic, changed: make(chan struct{})}
}

func (r *Recorder[T]) start(h *topics.Handler, err error) *Recorder[T] {
	r.t.Helper()
	if err != nil {
		r.t.Fatalf("topicstest: recording topic %q: %v", r.topic, err)
	}
	r.handler = h
	r.t.Cleanup(r.Stop)
	return r
}

// add is the handler's function.
func (r *Recorder[T]) add(_ context.Context, it topics.Item[T]) error {
	r.mu.Lock()
	r.items = append(r.items, it)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	return nil
}

// Stop stops recording and waits for the recording goroutine to end. What
// was recorded stays readable. Stop is idempotent; it is called when the test
// ends.
func (r *Recorder[T]) Stop() { _ = r.handler.Stop() }

// Err returns nil while the recorder records, and once it has stopped, why:
// an error wrapping topics.ErrClosed (stopped, or its subscription ended).
func (r *Recorder[T]) Err() error { return r.handler.Err() }

// Items returns a copy of the items recorded so far, in order.
func (r *Recorder[T]) Items() []topics.Item[T] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.items)
}

// Values returns the values of the items recorded so far, in order.
func (r *Recorder[T]) Values() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]T, len(r.items))
	for i, it := range r.items {
		out[i] = it.Value
	}
	return out
}

// Len returns how many items have been recorded so far.
func (r *Recorder[T]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.items)
}

// WaitFor waits until at least n items have been recorded and returns the
// first n. If they do not arrive within Timeout, or the recording ends
// first, it fails the test with t.Fatalf, saying what it waited for and what
// arrived.
func (r *Recorder[T]) WaitFor(n int) []topics.Item[T] {
	r.t.Helper()
	what := fmt.Sprintf("%d item(s)", n)
	items := r.wait(what, func(items []topics.Item[T]) bool { return len(items) >= n })
	return items[:n]
}

// WaitUntil waits until done, called with every item recorded so far each
// time one arrives, returns true, and returns those items. what describes
// the condition for the failure message ("an order for ada"). If done is not
// satisfied within Timeout, or the recording ends first, it fails the test
// with t.Fatalf. done is called from the test's goroutine, with a copy.
func (r *Recorder[T]) WaitUntil(what string, done func([]topics.Item[T]) bool) []topics.Item[T] {
	r.t.Helper()
	return r.wait(what, done)
}

func (r *Recorder[T]) wait(what string, done func([]topics.Item[T]) bool) []topics.Item[T] {
	r.t.Helper()
	timer := time.NewTimer(r.Timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		items, changed := slices.Clone(r.items), r.changed
		r.mu.Unlock()
		if done(items) {
			return items
		}
		select {
		case <-changed:
		case <-r.handler.Done():
			if items := r.Items(); done(items) {
				return items
			}
			r.t.Fatalf("topicstest: waited for %s on topic %q, but the recording ended (%v); %s",
				what, r.topic, r.handler.Err(), describe(r.Items()))
			return nil
		case <-timer.C:
			r.t.Fatalf("topicstest: waited %v for %s on topic %q; %s", r.Timeout, what, r.topic, describe(r.Items()))
			return nil
		}
	}
}

// AssertNoLoss reports an error through the test if any recorded item says
// that items were missed before it, and returns whether there was none.
func (r *Recorder[T]) AssertNoLoss() bool {
	r.t.Helper()
	return AssertNoLoss(r.t, r.Items())
}

// AssertSequential reports an error through the test unless the recorded
// items have consecutive sequence numbers of one page, and returns whether
// they do.
func (r *Recorder[T]) AssertSequential() bool {
	r.t.Helper()
	return AssertSequential(r.t, r.Items())
}

// AssertNoLoss reports an error through t, naming the first such item, if
// any of items has a Missed count, and returns whether none has.
func AssertNoLoss[T any](t TB, items []topics.Item[T]) bool {
	t.Helper()
	var lost uint64
	first := -1
	for i, it := range items {
		if it.Missed > 0 {
			lost += it.Missed
			if first < 0 {
				first = i
			}
		}
	}
	if first < 0 {
		return true
	}
	it := items[first]
	t.Errorf("topicstest: %d item(s) lost: the first loss is of %d item(s) before #%d on topic %q (item %d of %d received)",
		lost, it.Missed, it.Sequence, it.Topic, first+1, len(items))
	return false
}

// AssertSequential reports an error through t, naming the first break, unless
// items have consecutive sequence numbers (n, n+1, n+2, …) of one page, and
// returns whether they do. It checks order and gaps, not Missed: a
// subscription's first item may have a Missed count and still be followed by
// consecutive items.
func AssertSequential[T any](t TB, items []topics.Item[T]) bool {
	t.Helper()
	for i := 1; i < len(items); i++ {
		prev, it := items[i-1], items[i]
		switch {
		case it.Page != prev.Page:
			t.Errorf("topicstest: items not sequential: item %d of %d is of page %d, the one before of page %d", i+1, len(items), it.Page, prev.Page)
			return false
		case it.Sequence != prev.Sequence+1:
			t.Errorf("topicstest: items not sequential: #%d follows #%d (item %d of %d, topic %q)", it.Sequence, prev.Sequence, i+1, len(items), it.Topic)
			return false
		}
	}
	return true
}

// describe lists items for a failure message: how many, and the last few.
func describe[T any](items []topics.Item[T]) string {
	const show = 10
	if len(items) == 0 {
		return "no item arrived"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d item(s) arrived:", len(items))
	if len(items) > show {
		fmt.Fprintf(&b, " … (%d more)", len(items)-show)
		items = items[len(items)-show:]
	}
	for _, it := range items {
		fmt.Fprintf(&b, " #%d", it.Sequence)
		if it.Missed > 0 {
			fmt.Fprintf(&b, " (after %d missed)", it.Missed)
		}
		fmt.Fprintf(&b, " %v;", it.Value)
	}
	return strings.TrimSuffix(b.String(), ";")
}
