package momentoserver

import (
	"context"
	"fmt"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/access"
)

// A caller is who makes a call, as its authorization header says: what it
// may do, and under which identity it publishes. Local mode has one caller
// who may do everything; a server with an authority has one per token.
type caller interface {
	publish(ctx context.Context, cache, topic string, v topics.Value) error
	subscribe(ctx context.Context, cache, topic string, opts ...topics.SubscribeOption) (*topics.Subscription[topics.Value], error)
	// administers reports whether the caller may create and delete caches.
	administers() bool
	// lists reports whether ListCaches shows the caller the named cache.
	lists(cache string) bool
}

// callerOf returns the caller a call's token stands for.
func (s *Server) callerOf(token string) (caller, error) {
	if s.authority == nil {
		return localCaller{s.engine}, nil
	}
	if token == "" {
		return nil, fmt.Errorf("%w: no token in the authorization header", access.ErrTokenInvalid)
	}
	if t, ok := fromSDKToken(token); ok {
		token = t // a client that sends the SDK form as it is
	}
	sess, err := s.authority.Session(token)
	if err != nil {
		return nil, err
	}
	return tokenCaller{sess, sess.Token()}, nil
}

// localCaller may do everything, and publishes anonymously.
type localCaller struct {
	engine *topics.Engine
}

func (l localCaller) publish(ctx context.Context, cache, topic string, v topics.Value) error {
	c, err := l.engine.Cache(cache)
	if err != nil {
		return err
	}
	return c.PublishAs(ctx, topic, "", v)
}

func (l localCaller) subscribe(ctx context.Context, cache, topic string, opts ...topics.SubscribeOption) (*topics.Subscription[topics.Value], error) {
	c, err := l.engine.Cache(cache)
	if err != nil {
		return nil, err
	}
	return c.Subscribe(ctx, topic, opts...)
}

func (localCaller) administers() bool { return true }
func (localCaller) lists(string) bool { return true }

// tokenCaller does what its token grants, through the token's session.
type tokenCaller struct {
	sess  *access.Session
	token access.Token
}

func (t tokenCaller) publish(ctx context.Context, cache, topic string, v topics.Value) error {
	return t.sess.PublishValue(ctx, cache, topic, v)
}

func (t tokenCaller) subscribe(ctx context.Context, cache, topic string, opts ...topics.SubscribeOption) (*topics.Subscription[topics.Value], error) {
	return t.sess.Subscribe(ctx, cache, topic, opts...)
}

// adminPermission is the grant that makes a token an administrator's: every
// role on every topic of every cache, caches to come included.
var adminPermission = access.Permission{Role: access.PublishSubscribe, Cache: access.AllCaches(), Topic: access.AllTopics()}

func (t tokenCaller) administers() bool {
	for _, p := range t.token.Permissions {
		if p == adminPermission {
			return true
		}
	}
	return false
}

func (t tokenCaller) lists(cache string) bool {
	for _, p := range t.token.Permissions {
		if p.Cache == access.AllCaches() || p.Cache == access.CacheName(cache) {
			return true
		}
	}
	return false
}
