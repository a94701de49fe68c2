package access

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ringbus/topics"
)

// A Session is the engine as the holder of one token sees it: the same
// Publish and Subscribe as a topics.Cache, naming the cache in each call (a
// token may span caches), limited to what the token grants and to the
// token's lifetime. A server that offers topics to clients opens one Session
// per request or connection from the token the client presents
// (Authority.Session), and serves the client through it alone.
//
// A Session refuses, with an error wrapping ErrPermissionDenied, what its
// token does not grant, and everything with an error wrapping
// ErrTokenExpired once the token has expired. What it publishes carries the
// token's ID in Item.Publisher, which no other publisher can set.
//
// A Session is immutable and safe for concurrent use; it holds no resources
// and needs no closing. The zero Session is not usable.
type Session struct {
	engine *topics.Engine
	token  Token
}

// Token returns what the session's token carries: its ID, expiry and
// permissions. The caller owns the returned Permissions slice.
func (s *Session) Token() Token {
	t := s.token
	t.Permissions = slices.Clone(t.Permissions)
	return t
}

// Publish publishes a copy of value to the topic of the named cache, as
// topics.Cache.Publish does, with the token's ID as the item's Publisher.
//
// On top of the errors of Cache.Publish, it returns an error wrapping
// ErrTokenExpired once the token has expired, ErrPermissionDenied if the
// token does not grant publishing to that topic of that cache, and
// topics.ErrCacheNotFound if there is no such cache (checked after the
// permission, so a session learns nothing of caches it may not use). A
// refused publish has published nothing.
func (s *Session) Publish(ctx context.Context, cache, topic string, value []byte) error {
	c, err := s.publishCache(cache, topic)
	if err != nil {
		return err
	}
	return c.PublishAs(ctx, topic, s.token.ID, topics.BytesValue(value))
}

// PublishString is Publish for a text payload.
func (s *Session) PublishString(ctx context.Context, cache, topic, value string) error {
	c, err := s.publishCache(cache, topic)
	if err != nil {
		return err
	}
	return c.PublishAs(ctx, topic, s.token.ID, topics.TextValue(value))
}

// PublishValue is Publish for a Value, text or bytes, which it does not
// copy: a server that decoded a client's payload into a Value publishes it
// as it is.
func (s *Session) PublishValue(ctx context.Context, cache, topic string, v topics.Value) error {
	c, err := s.publishCache(cache, topic)
	if err != nil {
		return err
	}
	return c.PublishAs(ctx, topic, s.token.ID, v)
}

func (s *Session) publishCache(cache, topic string) (*topics.Cache, error) {
	if err := s.authorize(PublishOnly, cache, topic); err != nil {
		return nil, err
	}
	return s.engine.Cache(cache)
}

// Subscribe subscribes to the topic of the named cache, as
// topics.Cache.Subscribe does (ResumeAt included).
//
// The subscription ends when the token expires: Next then returns an error
// wrapping both topics.ErrClosed and ErrTokenExpired, at once if it is
// waiting. The client fetches a new token and subscribes again with
// ResumeAt, from the page and sequence after the last item it received, and
// loses nothing that the topic still holds.
//
// Lossless is refused with topics.ErrInvalidOption: a lossless subscription
// holds up every publisher of its topic while it lags, and a client must
// never be able to slow a topic down for everyone else.
//
// On top of the errors of Cache.Subscribe, it returns an error wrapping
// ErrTokenExpired, ErrPermissionDenied or topics.ErrCacheNotFound, as
// Publish does.
func (s *Session) Subscribe(ctx context.Context, cache, topic string, opts ...topics.SubscribeOption) (*topics.Subscription[topics.Value], error) {
	if err := s.authorize(SubscribeOnly, cache, topic); err != nil {
		return nil, err
	}
	c, err := s.engine.Cache(cache)
	if err != nil {
		return nil, err
	}
	opts = append(slices.Clip(opts), topics.NoLossless(), topics.EndAt(s.token.Expires, expiredError(s.token.ID, s.token.Expires)))
	return c.Subscribe(ctx, topic, opts...)
}

// authorize returns nil if the token, still valid, grants role on the topic
// of the cache.
func (s *Session) authorize(role Role, cache, topic string) error {
	if !time.Now().Before(s.token.Expires) {
		return expiredError(s.token.ID, s.token.Expires)
	}
	if err := topics.ValidateCacheName(cache); err != nil {
		return err
	}
	if err := topics.ValidateTopicName(topic); err != nil {
		return err
	}
	if !s.token.allows(role, cache, topic) {
		verb := "publishing to"
		if role == SubscribeOnly {
			verb = "subscribing to"
		}
		return fmt.Errorf("%w: token %q does not grant %s topic %q of cache %q", ErrPermissionDenied, s.token.ID, verb, topic, cache)
	}
	return nil
}
