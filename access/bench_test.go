package access_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/internal/testkit"
)

// BenchmarkPublishAccess measures what the access-control and rate-limit
// machinery adds to a publish with no subscribers, against a plain
// Cache.PublishString in the same run:
//
//   - cache: Cache.PublishString, no rate limit (the baseline);
//   - cache-rate-limited: the same with WithPublishRate set so high that
//     every publish is admitted: the cost of the bucket itself;
//   - session: Session.PublishString under a token for the topic (expiry
//     and permission check, cache lookup, publisher ID).
func BenchmarkPublishAccess(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, publish func() error) {
		b.ReportAllocs()
		for b.Loop() {
			if err := publish(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("cache", func(b *testing.B) {
		c := testkit.NewCache(b)
		run(b, func() error { return c.PublishString(ctx, "t", "x") })
	})
	b.Run("cache-rate-limited", func(b *testing.B) {
		c := testkit.NewCache(b, topics.WithPublishRate(topics.MaxPublishRate, math.MaxInt32))
		run(b, func() error { return c.PublishString(ctx, "t", "x") })
	})
	b.Run("session", func(b *testing.B) {
		e := tokenEngine(b)
		if _, err := e.CreateCache("chat"); err != nil {
			b.Fatal(err)
		}
		s := newSession(b, e, mint(b, e, grant("ada", time.Hour, chatRooms)))
		run(b, func() error { return s.PublishString(ctx, "chat", "room/1", "x") })
	})
}

// BenchmarkSession measures verifying a token (Authority.Session), which a
// server does once per request or connection.
func BenchmarkSession(b *testing.B) {
	e := tokenEngine(b)
	tok := mint(b, e, grant("ada", time.Hour, chatRooms))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Session(tok); err != nil {
			b.Fatal(err)
		}
	}
}
