package topics

import (
	"context"
	"fmt"
	"reflect"
	"sync/atomic"
	"unsafe"
)

// A Topic is a typed handle on one topic of a cache: values of type T are
// delivered to subscribers as they are, with no serialisation. It is safe for
// concurrent use, and cheap: get it once and keep it.
//
// The values are shared by every subscriber. If T is or contains a pointer,
// slice or map, publish values you will not modify afterwards, and treat
// received values as read-only.
type Topic[T any] struct {
	cache *Cache
	name  string
	sized bool // T is Value: payloads are limited by MaxValueSize

	// cur caches the topic, so that Publish skips the cache's table. It is
	// looked up again when the sweeper has dropped it.
	cur atomic.Pointer[instance[T]]
}

// TopicOf returns a handle on the named topic of c carrying values of type T.
// The topic itself is created by the first publish or subscribe.
//
// It returns an error wrapping ErrTopicType if the topic exists and carries
// another type, ErrInvalidName for a bad name, ErrClosed if c is closed. The
// topic that Cache.Publish and Cache.Subscribe use is TopicOf[Value].
//
// Whether T is the topic's type is checked here only if the topic exists:
// handles of two types taken before either is used are both returned, and
// the first publish or subscribe decides. From then on the other handle's
// Publish, Subscribe and Handle return the ErrTopicType error, which names
// both types, and so they do if the topic is dropped as idle and comes back
// with another type.
func TopicOf[T any](c *Cache, name string) (*Topic[T], error) {
	if err := ValidateTopicName(name); err != nil {
		return nil, err
	}
	if e := c.end.Load(); e != nil {
		return nil, e
	}
	_, sized := any((*T)(nil)).(*Value)
	if c.cfg.sequencer != nil && !sized {
		return nil, c.notValue(name, reflect.TypeFor[T]())
	}
	h := &Topic[T]{cache: c, name: name, sized: sized}
	if v, ok := c.topics.Load(name); ok {
		t, ok := v.(*instance[T])
		if !ok {
			return nil, topicTypeError[T](c, name, v)
		}
		h.cur.Store(t)
	}
	return h, nil
}

// Name returns the topic's name.
func (h *Topic[T]) Name() string { return h.name }

// Publish publishes v to every current subscriber of the topic. It succeeds
// when there is no subscriber, and never waits for one, except for a Lossless
// subscription that has not read the item Publish would overwrite.
//
// It returns an error wrapping ErrTopicType (the topic was dropped and
// re-created with another type), ErrValueTooLarge (a Value over the limit),
// ErrLimitExceeded (too many topics, or the publish rate) or ErrClosed; or
// ctx.Err() if ctx is done before it could publish. A publish that returns an
// error has published nothing.
func (h *Topic[T]) Publish(ctx context.Context, v T) error {
	mustContext(ctx)
	// The direct path: a live topic with nothing to check but the context
	// and the cache, published straight to its ring. Every other case, and
	// any error, takes the full path below. It repeats the ring step of
	// instance.publish rather than calling it: the call costs a typed
	// publish 4% (benchstat, 10 interleaved rounds).
	if t := h.cur.Load(); t != nil && t.plain && ctx.Err() == nil && h.cache.closing.Load() == nil && t.subs.Load() != dropped {
		if _, err := t.ring.Publish(ctx, nil, v); err != nil {
			return t.heldBackError(err)
		}
		if t.heldBack.Load() {
			t.heldBack.Store(false)
		}
		return nil
	}
	t, err := h.resolve(ctx, v)
	if err != nil {
		return err
	}
	return t.publish(ctx, nil, v)
}

// resolve makes every check of a publish of v and returns the topic.
func (h *Topic[T]) resolve(ctx context.Context, v T) (*instance[T], error) {
	c := h.cache
	size := 0
	if h.sized {
		// T is Value, so this conversion only restates v's type.
		if size = (*Value)(unsafe.Pointer(&v)).Len(); size > c.cfg.maxValueSize {
			return nil, c.tooLarge(h.name, size)
		}
	}
	if err := c.usable(ctx); err != nil {
		return nil, err
	}
	t := h.cur.Load()
	if t == nil || t.subs.Load() == dropped {
		var err error
		if t, err = acquireTopic[T](c, h.name); err != nil {
			return nil, err
		}
		h.cur.Store(t)
	}
	if err := t.admitBytes(size); err != nil {
		return nil, err
	}
	if err := t.admitPublish(); err != nil {
		return nil, err
	}
	return t, nil
}

// Subscribe subscribes to the topic, as Cache.Subscribe does.
func (h *Topic[T]) Subscribe(ctx context.Context, opts ...SubscribeOption) (*Subscription[T], error) {
	mustContext(ctx)
	s, err := subscribe[T](ctx, h.cache, h.name, opts)
	if err == nil {
		h.cur.Store(s.topic)
	}
	return s, err
}

// typeNames returns the names of two different types for an error message,
// told apart: as reflect prints them, followed by their packages' paths
// where the two print alike (text/template's and html/template's Template
// are both template.Template), or else by a note that they only share a
// name (two types declared in different functions).
func typeNames(a, b reflect.Type) (string, string) {
	as, bs := a.String(), b.String()
	if as != bs {
		return as, bs
	}
	if pa, pb := pkgPath(a), pkgPath(b); pa != pb {
		return fmt.Sprintf("%s (package %s)", as, pa), fmt.Sprintf("%s (package %s)", bs, pb)
	}
	return as, bs + " (another type of that name)"
}

// pkgPath returns the path of the package that declares t, or of the named
// type that t is a pointer to, a slice, array, channel or map of; or "".
func pkgPath(t reflect.Type) string {
	for t.Name() == "" {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Chan, reflect.Map:
			t = t.Elem()
		default:
			return ""
		}
	}
	return t.PkgPath()
}
