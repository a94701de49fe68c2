// Package testkit holds the helpers that the tests of several packages of
// this module share: caches closed when a test ends, reads and publishes
// that fail the test, and waits with deadlines. It is for this module's
// tests only; users have package topicstest.
package testkit

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

// WaitLimit is the deadline for anything that must happen "promptly": it is
// a bound for failure, never a delay to synchronise on.
const WaitLimit = 5 * time.Second

// NewCache returns a standalone cache that is closed when the test ends.
func NewCache(t testing.TB, opts ...topics.Option) *topics.Cache {
	t.Helper()
	c, err := topics.NewCache("test-cache", opts...)
	require.NoError(t, err)
	require.NotNil(t, c)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Subscribe subscribes with a background context; the subscription is closed
// when the test ends.
func Subscribe(t testing.TB, c *topics.Cache, topic string, opts ...topics.SubscribeOption) *topics.Subscription[topics.Value] {
	t.Helper()
	s, err := c.Subscribe(context.Background(), topic, opts...)
	require.NoError(t, err)
	require.NotNil(t, s)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Next reads one item that must arrive within WaitLimit.
func Next[T any](t testing.TB, s *topics.Subscription[T]) topics.Item[T] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	it, err := s.Next(ctx)
	require.NoError(t, err)
	return it
}

// Publish publishes a text value and requires success.
func Publish(t testing.TB, c *topics.Cache, topic, value string) {
	t.Helper()
	require.NoError(t, c.PublishString(context.Background(), topic, value))
}

// PublishConcurrently publishes each text values "p:i" (i from 0) to topic
// from each of publishers Goroutines p at once, and returns when they have
// all finished; a failed Publish fails the test.
func PublishConcurrently(t testing.TB, c *topics.Cache, topic string, publishers, each int) {
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				if err := c.PublishString(context.Background(), topic, fmt.Sprintf("%d:%d", p, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A Result is what a Next called by NextAsync returned.
type Result[T any] struct {
	Item topics.Item[T]
	Err  error
}

// NextAsync calls s.Next(ctx) in a new goroutine and delivers its Result.
func NextAsync[T any](ctx context.Context, s *topics.Subscription[T]) <-chan Result[T] {
	ch := make(chan Result[T], 1)
	go func() {
		it, err := s.Next(ctx)
		ch <- Result[T]{it, err}
	}()
	return ch
}

// Await returns the Result of NextAsync, failing if it takes longer than
// WaitLimit.
func Await[T any](t testing.TB, ch <-chan Result[T]) Result[T] {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(WaitLimit):
		t.Fatalf("Next did not return within %v", WaitLimit)
		panic("unreachable")
	}
}

// RequirePending fails if the Next behind ch has returned.
func RequirePending[T any](t testing.TB, ch <-chan Result[T]) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("Next returned early: item %+v, err %v", r.Item, r.Err)
	default:
	}
}

// RunWithin runs f in a new goroutine and requires it to return nil within
// d; if it does not, the test fails with what(), and f is left running (the
// test is failing anyway, and goleak will name it).
func RunWithin(t testing.TB, d time.Duration, f func() error, what func() string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(d):
		t.Fatal(what())
	}
}

// Goroutines returns the stacks of every goroutine: for reports of a hang,
// and for tests that look at what Goroutines are blocked in.
func Goroutines() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// ParkedNexts counts the Goroutines blocked waiting for an item in
// Subscription.Next, NextBatch, All or a handler: in the wait they share.
func ParkedNexts() int {
	count := 0
	for _, g := range strings.Split(Goroutines(), "\n\n") {
		header, body, _ := strings.Cut(g, "\n")
		if !strings.Contains(header, "[select") && !strings.Contains(header, "[chan receive") {
			continue
		}
		if strings.Contains(body, "github.com/ringbus/topics.(*Subscription[") && strings.Contains(body, "]).wait(") {
			count++
		}
	}
	return count
}

// WaitParked waits until at least n Goroutines are blocked waiting for an
// item (see ParkedNexts), polling the goroutine stacks until WaitLimit.
func WaitParked(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(WaitLimit)
	for {
		got := ParkedNexts()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d Next calls parked within %v", got, n, WaitLimit)
		}
		runtime.Gosched()
		<-time.After(time.Millisecond) // poll interval
	}
}

// Watchdog fails loudly if a synctest bubble hangs (for example because
// Goroutines inside it never block durably).
func Watchdog(t *testing.T, d time.Duration) {
	name := t.Name()
	timer := time.AfterFunc(d, func() {
		panic(name + ": test still running after " + d.String() + " (synctest bubble never became idle?)")
	})
	t.Cleanup(func() { timer.Stop() })
}

// NextErr calls Next, which must return an error within WaitLimit, with a
// zero Item, and returns the error.
func NextErr[T any](t testing.TB, s *topics.Subscription[T]) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	it, err := s.Next(ctx)
	require.Error(t, err, "got item %+v", it)
	require.Equal(t, topics.Item[T]{}, it, "an error comes with a zero Item")
	return err
}

// Cancelled returns a context that is already done.
func Cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
