package topics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// A Session is the engine as the holder of one token sees it: the same
// Publish and Subscribe as a Cache, naming the cache in each call (a token
// may span caches), limited to what the token grants and to the token's
// lifetime. A server that offers topics to clients makes one Session per
// request or connection from the token the client presents, and serves the
// client through it alone.
//
// A Session refuses, with an error wrapping ErrPermissionDenied, what its
// token does not grant, and everything with an error wrapping
// ErrTokenExpired once the token has expired. What it publishes carries the
// token's ID in Item.Publisher, which no other publisher can set.
//
// A Session is immutable and safe for concurrent use; it holds no resources
// and needs no closing. Get one from Engine.Session; the zero Session is not
// usable.
type Session struct {
	engine *Engine
	token  Token
}

// Session verifies a token string made by MintToken and returns the
// session it opens. The token must be signed with one of the engine's keys
// (see WithTokenKeys); a Session made before the keys change stays valid
// until its token expires.
//
// It returns an error wrapping ErrTokenInvalid for a token that is
// malformed, altered, forged or signed with a key the engine no longer
// holds, ErrTokenExpired for one that has expired (a server answers both
// with 401 Unauthorized, and the client fetches a new token), and
// ErrInvalidOption if the engine has no keys.
func (e *Engine) Session(token string) (*Session, error) {
	t, err := e.verifyToken(token, time.Now())
	if err != nil {
		return nil, err
	}
	return &Session{engine: e, token: t}, nil
}

// Token returns what the session's token carries: its ID, expiry and
// permissions. The caller owns the returned Permissions slice.
func (s *Session) Token() Token {
	t := s.token
	t.Permissions = slices.Clone(t.Permissions)
	return t
}

// Publish publishes a copy of value to the topic of the named cache, as
// Cache.Publish does, with the token's ID as the item's Publisher.
//
// On top of the errors of Cache.Publish, it returns an error wrapping
// ErrTokenExpired once the token has expired, ErrPermissionDenied if the
// token does not grant publishing to that topic of that cache, and
// ErrCacheNotFound if there is no such cache (checked after the
// permission, so a session learns nothing of caches it may not use). A
// refused publish has published nothing.
func (s *Session) Publish(ctx context.Context, cache, topic string, value []byte) error {
	t, err := s.publishTopic(ctx, cache, topic, len(value))
	if err != nil {
		return err
	}
	return t.publish(ctx, &s.token.ID, BytesValue(value))
}

// PublishString is Publish for a text payload.
func (s *Session) PublishString(ctx context.Context, cache, topic, value string) error {
	t, err := s.publishTopic(ctx, cache, topic, len(value))
	if err != nil {
		return err
	}
	return t.publish(ctx, &s.token.ID, TextValue(value))
}

func (s *Session) publishTopic(ctx context.Context, cache, topic string, size int) (*topic[Value], error) {
	if err := s.authorize(PublishOnly, cache, topic); err != nil {
		return nil, err
	}
	c, err := s.engine.Cache(cache)
	if err != nil {
		return nil, err
	}
	return c.valueTopic(ctx, topic, size)
}

// Subscribe subscribes to the topic of the named cache, as Cache.Subscribe
// does (ResumeAt included).
//
// The subscription ends when the token expires: Next then returns an error
// wrapping both ErrClosed and ErrTokenExpired, at once if it is waiting.
// The client fetches a new token and subscribes again with ResumeAt, from
// the page and sequence after the last item it received, and loses nothing
// that the topic still holds.
//
// Lossless is refused with ErrInvalidOption: a lossless subscription holds
// up every publisher of its topic while it lags, and a client must never be
// able to slow a topic down for everyone else.
//
// On top of the errors of Cache.Subscribe, it returns an error wrapping
// ErrTokenExpired, ErrPermissionDenied or ErrCacheNotFound, as Publish does.
func (s *Session) Subscribe(ctx context.Context, cache, topic string, opts ...SubscribeOption) (*Subscription[Value], error) {
	if err := s.authorize(SubscribeOnly, cache, topic); err != nil {
		return nil, err
	}
	cfg, err := buildSubscribeConfig(opts)
	if err != nil {
		return nil, err
	}
	if cfg.lossless {
		return nil, fmt.Errorf("%w: Lossless: a session's subscription may not hold up publishers", ErrInvalidOption)
	}
	c, err := s.engine.Cache(cache)
	if err != nil {
		return nil, err
	}
	// The subscription already ends when its context does, with an error
	// that wraps the context's cause. A deadline at the token's expiry, with
	// the expiry as cause, is all it takes; the context is released as soon
	// as the subscription ends in any other way.
	expired := expiredError(s.token.ID, s.token.Expires)
	tctx, cancel := context.WithDeadlineCause(ctx, s.token.Expires, expired)
	sub, err := subscribe[Value](tctx, c, topic, opts)
	if err != nil {
		if errors.Is(context.Cause(tctx), ErrTokenExpired) && ctx.Err() == nil {
			err = expired // expired between authorize and here
		}
		cancel()
		return nil, err
	}
	sub.alsoOnDetach(cancel)
	return sub, nil
}

// authorize returns nil if the token, still valid, grants role on the topic
// of the cache.
func (s *Session) authorize(role Role, cache, topic string) error {
	if !time.Now().Before(s.token.Expires) {
		return expiredError(s.token.ID, s.token.Expires)
	}
	if err := validateCacheName(cache); err != nil {
		return err
	}
	if err := validateTopicName(topic); err != nil {
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
