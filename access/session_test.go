package access_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/access"
	"github.com/ringbus/topics/internal/testkit"
)

// chatEngine returns an engine signing with key1 with the caches named,
// closed when the test ends.
func chatEngine(t testing.TB, names ...string) *authEngine {
	t.Helper()
	e := tokenEngine(t)
	for _, n := range names {
		_, err := e.CreateCache(n)
		require.NoError(t, err)
	}
	return e
}

func engineCache(t testing.TB, e *authEngine, name string) *topics.Cache {
	t.Helper()
	c, err := e.Cache(name)
	require.NoError(t, err)
	return c
}

// TestSessionPermissionMatrix tries every role × cache selector × topic
// selector, for publishing and subscribing, on topics each selector must
// allow and must refuse. The sets each selector matches are written out by
// hand, so the test does not restate the code's matching rules.
func TestSessionPermissionMatrix(t *testing.T) {
	type target struct{ cache, topic string }
	targets := []target{
		{"chat", "room/1"}, {"chat", "room/2"}, {"chat", "room"}, {"chat", "roomy"}, {"chat", "lobby"},
		{"other", "room/1"}, {"other", "lobby"},
	}
	roles := []struct {
		role     access.Role
		pub, sub bool
	}{
		{access.PublishOnly, true, false},
		{access.SubscribeOnly, false, true},
		{access.PublishSubscribe, true, true},
	}
	caches := []struct {
		sel     access.CacheSelector
		matches []string
	}{
		{access.AllCaches(), []string{"chat", "other"}},
		{access.CacheName("chat"), []string{"chat"}},
	}
	topicSels := []struct {
		sel     access.TopicSelector
		matches []string
	}{
		{access.AllTopics(), []string{"room/1", "room/2", "room", "roomy", "lobby"}},
		{access.TopicName("room/1"), []string{"room/1"}},
		{access.TopicPrefix("room/"), []string{"room/1", "room/2"}},
	}
	in := func(s string, set []string) bool {
		for _, x := range set {
			if x == s {
				return true
			}
		}
		return false
	}

	e := chatEngine(t, "chat", "other")
	allowed, refused := 0, 0
	for _, r := range roles {
		for _, c := range caches {
			for _, tp := range topicSels {
				perm := access.Permission{Role: r.role, Cache: c.sel, Topic: tp.sel}
				s := newSession(t, e, mint(t, e, grant("holder", time.Minute, perm)))
				for _, tg := range targets {
					match := in(tg.cache, c.matches) && in(tg.topic, tp.matches)
					for _, op := range []struct {
						name string
						want bool
						try  func() error
					}{
						{"publish", match && r.pub, func() error { return s.PublishString(t.Context(), tg.cache, tg.topic, "hello") }},
						{"subscribe", match && r.sub, func() error {
							sub, err := s.Subscribe(t.Context(), tg.cache, tg.topic)
							if err == nil {
								// A working subscription: it receives what is published.
								defer sub.Close()
								testkit.Publish(t, engineCache(t, e, tg.cache), tg.topic, "to subscriber")
								assert.Equal(t, "to subscriber", testkit.Next(t, sub).Value.String())
							} else {
								assert.Nil(t, sub)
							}
							return err
						}},
					} {
						name := fmt.Sprintf("%v on %v/%s/%s %s", perm, tg.cache, tg.topic, op.name, map[bool]string{true: "allowed", false: "refused"}[op.want])
						// Watch the topic: a refused publish must publish nothing.
						watch := testkit.Subscribe(t, engineCache(t, e, tg.cache), tg.topic)
						err := op.try()
						if op.want {
							allowed++
							assert.NoError(t, err, name)
							if op.name == "publish" {
								it := testkit.Next(t, watch)
								assert.Equal(t, "hello", it.Value.String(), name)
								assert.Equal(t, "holder", it.Publisher, name)
							}
						} else {
							refused++
							assert.ErrorIs(t, err, access.ErrPermissionDenied, name)
							if err != nil {
								assert.Contains(t, err.Error(), fmt.Sprintf("topic %q of cache %q", tg.topic, tg.cache), name)
							}
							testkit.Publish(t, engineCache(t, e, tg.cache), tg.topic, "marker")
							it := testkit.Next(t, watch)
							assert.Equal(t, "marker", it.Value.String(), "%s: nothing was published before the marker", name)
							assert.Equal(t, uint64(0), it.Missed, name)
						}
						require.NoError(t, watch.Close())
					}
				}
			}
		}
	}
	assert.Equal(t, 3*2*3*len(targets)*2, allowed+refused)
	assert.Positive(t, allowed)
	assert.Positive(t, refused)
}

// TestSessionPermissionsUnion: a request is allowed if any permission of
// the token allows it.
func TestSessionPermissionsUnion(t *testing.T) {
	e := chatEngine(t, "chat")
	s := newSession(t, e, mint(t, e, grant("ada", time.Minute,
		access.Permission{Role: access.SubscribeOnly, Cache: access.CacheName("chat"), Topic: access.AllTopics()},
		access.Permission{Role: access.PublishOnly, Cache: access.CacheName("chat"), Topic: access.TopicName("room/ada")},
	)))
	sub, err := s.Subscribe(t.Context(), "chat", "room/bob")
	require.NoError(t, err)
	defer sub.Close()
	require.ErrorIs(t, s.PublishString(t.Context(), "chat", "room/bob", "x"), access.ErrPermissionDenied)
	require.NoError(t, s.PublishString(t.Context(), "chat", "room/ada", "x"))
}

// TestSessionPublisher: what a session publishes carries its token's ID,
// and nothing else can set it.
func TestSessionPublisher(t *testing.T) {
	e := chatEngine(t, "chat")
	c := engineCache(t, e, "chat")
	ada := newSession(t, e, mint(t, e, grant("ada", time.Minute, chatRooms)))
	anon := newSession(t, e, mint(t, e, grant("", time.Minute, chatRooms)))
	watch := testkit.Subscribe(t, c, "room/1")

	require.NoError(t, ada.PublishString(t.Context(), "chat", "room/1", "text"))
	require.NoError(t, ada.Publish(t.Context(), "chat", "room/1", []byte{0, 1}))
	require.NoError(t, ada.PublishValue(t.Context(), "chat", "room/1", topics.TextValue("value")))
	require.NoError(t, anon.PublishString(t.Context(), "chat", "room/1", "anonymous"))
	testkit.Publish(t, c, "room/1", "server")
	h, err := topics.TopicOf[topics.Value](c, "room/1")
	require.NoError(t, err)
	require.NoError(t, h.Publish(t.Context(), topics.TextValue("typed")))

	for _, want := range []struct {
		value     string
		text      bool
		publisher string
	}{
		{"text", true, "ada"}, {"\x00\x01", false, "ada"}, {"value", true, "ada"}, {"anonymous", true, ""}, {"server", true, ""}, {"typed", true, ""},
	} {
		it := testkit.Next(t, watch)
		assert.Equal(t, want.value, it.Value.String())
		assert.Equal(t, want.text, it.Value.IsText())
		assert.Equal(t, want.publisher, it.Publisher, "publisher of %q", want.value)
	}

	// A session through which ada subscribes sees her ID too.
	sub, err := ada.Subscribe(t.Context(), "chat", "room/1")
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, ada.PublishString(t.Context(), "chat", "room/1", "again"))
	assert.Equal(t, "ada", testkit.Next(t, sub).Publisher)
}

// TestSessionErrors: the order of the checks, and the cache's own errors.
func TestSessionErrors(t *testing.T) {
	e := tokenEngine(t, topics.WithMaxValueSize(8))
	_, err := e.CreateCache("chat")
	require.NoError(t, err)
	all := newSession(t, e, mint(t, e, grant("", time.Minute, access.Permission{Role: access.PublishSubscribe, Cache: access.AllCaches(), Topic: access.AllTopics()})))
	chat := newSession(t, e, mint(t, e, grant("", time.Minute, chatRooms)))
	ctx := t.Context()

	// Bad names are bad input whatever the token grants.
	require.ErrorIs(t, chat.PublishString(ctx, "chat", "room/ bad", "x"), topics.ErrInvalidName)
	require.ErrorIs(t, chat.PublishString(ctx, "bad cache", "room/1", "x"), topics.ErrInvalidName)
	_, err = chat.Subscribe(ctx, "chat", "")
	require.ErrorIs(t, err, topics.ErrInvalidName)

	// A missing cache is reported only to a session allowed to use it.
	require.ErrorIs(t, all.PublishString(ctx, "nope", "room/1", "x"), topics.ErrCacheNotFound)
	_, err = all.Subscribe(ctx, "nope", "room/1")
	require.ErrorIs(t, err, topics.ErrCacheNotFound)
	err = chat.PublishString(ctx, "nope", "room/1", "x")
	require.ErrorIs(t, err, access.ErrPermissionDenied)
	assert.NotErrorIs(t, err, topics.ErrCacheNotFound)

	// The cache's own checks apply.
	require.ErrorIs(t, chat.Publish(ctx, "chat", "room/1", make([]byte, 9)), topics.ErrValueTooLarge)
	require.ErrorIs(t, chat.PublishString(ctx, "chat", "room/1", "123456789"), topics.ErrValueTooLarge)
	h, err := topics.TopicOf[int](engineCache(t, e, "chat"), "room/int")
	require.NoError(t, err)
	require.NoError(t, h.Publish(ctx, 1))
	require.ErrorIs(t, chat.PublishString(ctx, "chat", "room/int", "x"), topics.ErrTopicType)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, chat.PublishString(canceled, "chat", "room/1", "x"), context.Canceled)
	_, err = chat.Subscribe(canceled, "chat", "room/1")
	require.ErrorIs(t, err, context.Canceled)

	// A client may not hold up publishers.
	_, err = chat.Subscribe(ctx, "chat", "room/1", topics.Lossless())
	require.ErrorIs(t, err, topics.ErrInvalidOption)
	assert.Contains(t, err.Error(), "Lossless")
	_, err = chat.Subscribe(ctx, "chat", "room/1", nil)
	require.ErrorIs(t, err, topics.ErrInvalidOption)

	// After Close, everything is closed; tokens still mint and verify.
	require.NoError(t, e.Close())
	require.ErrorIs(t, chat.PublishString(ctx, "chat", "room/1", "x"), topics.ErrClosed)
	_, err = chat.Subscribe(ctx, "chat", "room/1")
	require.ErrorIs(t, err, topics.ErrClosed)
	newSession(t, e, mint(t, e, grant("", time.Minute, chatRooms)))
}

// TestSessionSubscriptionExpires: a subscription opened under a token ends
// when the token expires, with an error wrapping ErrClosed and
// ErrTokenExpired; a Next waiting at that moment is woken. The client then
// resumes with a fresh token and loses nothing.
func TestSessionSubscriptionExpires(t *testing.T) {
	testkit.Watchdog(t, time.Minute)
	synctest.Test(t, func(t *testing.T) {
		e := chatEngine(t, "chat")
		c := engineCache(t, e, "chat")
		s := newSession(t, e, mint(t, e, grant("ada", time.Minute, chatRooms)))
		sub, err := s.Subscribe(t.Context(), "chat", "room/1")
		require.NoError(t, err)
		defer sub.Close()

		testkit.Publish(t, c, "room/1", "before")
		last := testkit.Next(t, sub)
		assert.Equal(t, "before", last.Value.String())

		waiting := testkit.NextAsync(t.Context(), sub)
		time.Sleep(time.Minute - time.Millisecond)
		synctest.Wait()
		testkit.RequirePending(t, waiting) // not a moment early

		time.Sleep(time.Millisecond)
		synctest.Wait()
		r := testkit.Await(t, waiting)
		require.ErrorIs(t, r.Err, topics.ErrClosed)
		require.ErrorIs(t, r.Err, access.ErrTokenExpired)
		assert.NotErrorIs(t, r.Err, context.DeadlineExceeded, "the cause is the token, not a deadline")
		assert.Contains(t, r.Err.Error(), `token "ada" expired`)
		assert.Equal(t, topics.Item[topics.Value]{}, r.Item)
		// And it stays ended.
		_, err = sub.Next(t.Context())
		require.ErrorIs(t, err, access.ErrTokenExpired)

		// Meanwhile the room went on.
		testkit.Publish(t, c, "room/1", "missed 1")
		testkit.Publish(t, c, "room/1", "missed 2")

		// The client fetches a fresh token and resumes after the last item
		// it saw.
		fresh := newSession(t, e, mint(t, e, grant("ada", time.Minute, chatRooms)))
		again, err := fresh.Subscribe(t.Context(), "chat", "room/1", topics.ResumeAt(last.Page, last.Sequence+1))
		require.NoError(t, err)
		defer again.Close()
		for _, want := range []string{"missed 1", "missed 2"} {
			it := testkit.Next(t, again)
			assert.Equal(t, want, it.Value.String())
			assert.Equal(t, uint64(0), it.Missed)
		}
	})
}

// TestSessionSubscriptionOtherEnds: a subscription under a token that ends
// some other way says so, not that the token expired.
func TestSessionSubscriptionOtherEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := chatEngine(t, "chat")
		s := newSession(t, e, mint(t, e, grant("", time.Hour, chatRooms)))

		// The caller's context ends first.
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		sub, err := s.Subscribe(ctx, "chat", "room/1")
		require.NoError(t, err)
		time.Sleep(time.Minute)
		_, err = sub.Next(t.Context())
		require.ErrorIs(t, err, topics.ErrClosed)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.NotErrorIs(t, err, access.ErrTokenExpired)

		// Close.
		sub, err = s.Subscribe(t.Context(), "chat", "room/1")
		require.NoError(t, err)
		require.NoError(t, sub.Close())
		_, err = sub.Next(t.Context())
		require.ErrorIs(t, err, topics.ErrClosed)
		assert.NotErrorIs(t, err, access.ErrTokenExpired)

		// DeleteCache.
		sub, err = s.Subscribe(t.Context(), "chat", "room/1")
		require.NoError(t, err)
		defer sub.Close()
		require.NoError(t, e.DeleteCache("chat"))
		_, err = sub.Next(t.Context())
		require.ErrorIs(t, err, topics.ErrCacheNotFound)
		assert.NotErrorIs(t, err, access.ErrTokenExpired)
	})
}

// registryContext is a context that counts the callbacks registered on it
// (context.AfterFunc and the contexts derived from it register one each)
// and not yet released, to show that a subscription lets go of its
// Subscribe context.
type registryContext struct {
	context.Context
	mu   sync.Mutex
	live int
}

func (c *registryContext) AfterFunc(f func()) func() bool {
	c.mu.Lock()
	c.live++
	c.mu.Unlock()
	stop := context.AfterFunc(c.Context, f)
	var once sync.Once
	return func() bool {
		once.Do(func() {
			c.mu.Lock()
			c.live--
			c.mu.Unlock()
		})
		return stop()
	}
}

// Value hides the context it wraps from the context package, which would
// otherwise register children with that one directly.
func (c *registryContext) Value(any) any { return nil }

func (c *registryContext) registered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

// TestSessionSubscriptionReleasesContext: the context Session.Subscribe
// derives for the token's expiry is released when the subscription ends
// in any other way, so no timer or reference is left behind until the
// token expires.
func TestSessionSubscriptionReleasesContext(t *testing.T) {
	ways := []struct {
		desc string
		end  func(t *testing.T, e *authEngine, sub *topics.Subscription[topics.Value])
	}{
		{"Close", func(t *testing.T, _ *authEngine, sub *topics.Subscription[topics.Value]) {
			require.NoError(t, sub.Close())
		}},
		{"DeleteCache, then Next", func(t *testing.T, e *authEngine, sub *topics.Subscription[topics.Value]) {
			require.NoError(t, e.DeleteCache("chat"))
			require.ErrorIs(t, testkit.NextErr(t, sub), topics.ErrClosed)
		}},
		{"Engine.Close, then Next", func(t *testing.T, e *authEngine, sub *topics.Subscription[topics.Value]) {
			require.NoError(t, e.Close())
			require.ErrorIs(t, testkit.NextErr(t, sub), topics.ErrClosed)
		}},
		{"All, broken off", func(t *testing.T, e *authEngine, sub *topics.Subscription[topics.Value]) {
			require.NoError(t, engineCache(t, e, "chat").PublishString(t.Context(), "room/1", "x"))
			for range sub.All(t.Context()) {
				break
			}
		}},
	}
	for _, way := range ways {
		t.Run(way.desc, func(t *testing.T) {
			parent, cancel := context.WithCancel(t.Context())
			defer cancel()
			ctx := &registryContext{Context: parent}
			e := chatEngine(t, "chat")
			s := newSession(t, e, mint(t, e, grant("", time.Hour, chatRooms)))
			sub, err := s.Subscribe(ctx, "chat", "room/1")
			require.NoError(t, err)
			require.Equal(t, 1, ctx.registered(), "the subscription's context hangs on the caller's")
			way.end(t, e, sub)
			assert.Equal(t, 0, ctx.registered(), "released")
		})
	}

	t.Run("refused", func(t *testing.T) {
		ctx := &registryContext{Context: t.Context()}
		e := tokenEngine(t, topics.WithMaxSubscribers(1))
		_, err := e.CreateCache("chat")
		require.NoError(t, err)
		s := newSession(t, e, mint(t, e, grant("", time.Hour, chatRooms)))
		sub, err := s.Subscribe(ctx, "chat", "room/1")
		require.NoError(t, err)
		defer sub.Close()
		_, err = s.Subscribe(ctx, "chat", "room/2")
		require.ErrorIs(t, err, topics.ErrLimitExceeded)
		assert.Equal(t, 1, ctx.registered(), "the refused subscribe released its context")
	})
}

func TestSessionConcurrent(t *testing.T) {
	e := chatEngine(t, "chat")
	tok := mint(t, e, grant("many", time.Minute, chatRooms))
	watch := testkit.Subscribe(t, engineCache(t, e, "chat"), "room/1")
	const goroutines, each = 4, 100
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for range goroutines {
		wg.Go(func() {
			s, err := e.Session(tok)
			if err != nil {
				errs <- err
				return
			}
			for i := range each {
				if err := s.PublishString(context.Background(), "chat", "room/1", fmt.Sprint(i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for range goroutines * each {
		it := testkit.Next(t, watch)
		require.Equal(t, "many", it.Publisher)
		require.Zero(t, it.Missed)
	}
}
