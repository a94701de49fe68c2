package topics_test

import (
	"context"
	"testing"
	"time"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/internal/testkit"
)

// The helpers of internal/testkit, under the short names these tests use.

const waitLimit = testkit.WaitLimit

type result[T any] = testkit.Result[T]

func newCache(t testing.TB, opts ...topics.Option) *topics.Cache {
	t.Helper()
	return testkit.NewCache(t, opts...)
}

func subscribe(t testing.TB, c *topics.Cache, topic string, opts ...topics.SubscribeOption) *topics.Subscription[topics.Value] {
	t.Helper()
	return testkit.Subscribe(t, c, topic, opts...)
}

func next[T any](t testing.TB, s *topics.Subscription[T]) topics.Item[T] {
	t.Helper()
	return testkit.Next(t, s)
}

func publish(t testing.TB, c *topics.Cache, topic, value string) {
	t.Helper()
	testkit.Publish(t, c, topic, value)
}

func publishConcurrently(t testing.TB, c *topics.Cache, topic string, publishers, each int) {
	testkit.PublishConcurrently(t, c, topic, publishers, each)
}

func nextAsync[T any](ctx context.Context, s *topics.Subscription[T]) <-chan result[T] {
	return testkit.NextAsync(ctx, s)
}

func await[T any](t testing.TB, ch <-chan result[T]) result[T] {
	t.Helper()
	return testkit.Await(t, ch)
}

func requirePending[T any](t testing.TB, ch <-chan result[T]) {
	t.Helper()
	testkit.RequirePending(t, ch)
}

func runWithin(t testing.TB, d time.Duration, f func() error, what func() string) {
	t.Helper()
	testkit.RunWithin(t, d, f, what)
}

func nextErr[T any](t testing.TB, s *topics.Subscription[T]) error {
	t.Helper()
	return testkit.NextErr(t, s)
}

func cancelled() context.Context { return testkit.Cancelled() }

func goroutines() string                     { return testkit.Goroutines() }
func waitParked(t testing.TB, n int)         { t.Helper(); testkit.WaitParked(t, n) }
func watchdog(t *testing.T, d time.Duration) { testkit.Watchdog(t, d) }
