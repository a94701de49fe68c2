package topics_test

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

// waitLimit is the deadline for anything that must happen "promptly": it is
// a bound for failure, never a delay to synchronise on.
const waitLimit = 5 * time.Second

// newCache returns a standalone cache that is closed when the test ends.
func newCache(t testing.TB, opts ...topics.Option) *topics.Cache {
	t.Helper()
	c, err := topics.NewCache("test-cache", opts...)
	require.NoError(t, err)
	require.NotNil(t, c)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// subscribe subscribes with a background context; the subscription is closed
// when the test ends.
func subscribe(t testing.TB, c *topics.Cache, topic string, opts ...topics.SubscribeOption) *topics.Subscription[topics.Value] {
	t.Helper()
	s, err := c.Subscribe(context.Background(), topic, opts...)
	require.NoError(t, err)
	require.NotNil(t, s)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// next reads one item that must arrive within waitLimit.
func next[T any](t testing.TB, s *topics.Subscription[T]) topics.Item[T] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	it, err := s.Next(ctx)
	require.NoError(t, err)
	return it
}

// publish publishes a text value and requires success.
func publish(t testing.TB, c *topics.Cache, topic, value string) {
	t.Helper()
	require.NoError(t, c.PublishString(context.Background(), topic, value))
}

// publishConcurrently publishes each text values "p:i" (i from 0) to topic
// from each of publishers goroutines p at once, and returns when they have
// all finished; a failed publish fails the test.
func publishConcurrently(t testing.TB, c *topics.Cache, topic string, publishers, each int) {
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

type result[T any] struct {
	item topics.Item[T]
	err  error
}

// nextAsync calls s.Next(ctx) in a new goroutine and delivers its result.
func nextAsync[T any](ctx context.Context, s *topics.Subscription[T]) <-chan result[T] {
	ch := make(chan result[T], 1)
	go func() {
		it, err := s.Next(ctx)
		ch <- result[T]{it, err}
	}()
	return ch
}

// await returns the result of nextAsync, failing if it takes longer than
// waitLimit.
func await[T any](t testing.TB, ch <-chan result[T]) result[T] {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitLimit):
		t.Fatalf("Next did not return within %v", waitLimit)
		panic("unreachable")
	}
}

// requirePending fails if the Next behind ch has returned.
func requirePending[T any](t testing.TB, ch <-chan result[T]) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("Next returned early: item %+v, err %v", r.item, r.err)
	default:
	}
}

// runWithin runs f in a new goroutine and requires it to return nil within
// d; if it does not, the test fails with what(), and f is left running (the
// test is failing anyway, and goleak will name it).
func runWithin(t testing.TB, d time.Duration, f func() error, what func() string) {
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

// goroutines returns the stacks of every goroutine: for reports of a hang,
// and for tests that look at what goroutines are blocked in.
func goroutines() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// parkedNexts counts the goroutines blocked inside Subscription.Next.
func parkedNexts() int {
	count := 0
	for _, g := range strings.Split(goroutines(), "\n\n") {
		header, body, _ := strings.Cut(g, "\n")
		if !strings.Contains(header, "[select") && !strings.Contains(header, "[chan receive") {
			continue
		}
		if strings.Contains(body, "github.com/ringbus/topics.(*Subscription[") && strings.Contains(body, "]).Next(") {
			count++
		}
	}
	return count
}

// waitParked waits until at least n goroutines are blocked inside
// Subscription.Next, polling the goroutine stacks until waitLimit.
func waitParked(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		got := parkedNexts()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d Next calls parked within %v", got, n, waitLimit)
		}
		runtime.Gosched()
		<-time.After(time.Millisecond) // poll interval
	}
}

// watchdog fails loudly if a synctest bubble hangs (for example because
// goroutines inside it never block durably).
func watchdog(t *testing.T, d time.Duration) {
	name := t.Name()
	timer := time.AfterFunc(d, func() {
		panic(name + ": test still running after " + d.String() + " (synctest bubble never became idle?)")
	})
	t.Cleanup(func() { timer.Stop() })
}
