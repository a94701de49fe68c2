package topics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync/atomic"
)

// A Handler runs a function for every item of a topic, one item at a time
// and in order, on a goroutine of its own: push-style delivery on top of a
// Subscription. Start one with Topic.Handle or Cache.Handle.
//
// A handler ends when it is stopped (Stop), when its subscription ends (the
// context given to Handle is done, or the cache or engine is closed, shut
// down or deleted), or when its function panics. In every case its
// subscription is closed and its goroutine returns; Done is then closed and
// Err says why.
//
// An error returned by the function does not end the handler: it goes on
// with the next item. The error is logged by the cache's logger (WithLogger)
// and counted (Failures). This is what an event bus needs: one item that
// cannot be handled does not stop the handling of every later one. Give
// Handle the option StopOnError to end the handler with the first error
// instead.
//
// A panic in the function is recovered: it ends this handler only, never the
// process, other handlers or other subscribers. The handler does not go on
// with the next item, since whatever the function was doing was left
// half-done; Err, Wait and Stop return a *PanicError with the panic's value,
// the stack and the item, and the cache's logger (WithLogger) logs it. To
// carry on past the item, start a new handler with
// ResumeAt(pe.Page, pe.Sequence+1) (or pe.Sequence to retry it).
//
// The function may publish, subscribe and start or stop handlers, on any
// topic including its own, without deadlock: publishing never waits for a
// subscriber, and Stop called from the function itself does not wait for the
// function to return.
//
// A Handler is safe for concurrent use. It must not be copied. The zero
// Handler is not usable.
type Handler struct {
	_ noCopy

	sub    handled
	cancel context.CancelCauseFunc // cancels the context given to the function
	done   chan struct{}           // closed when the goroutine has returned

	gid     atomic.Uint64 // the handler goroutine's id, once it runs
	stopped atomic.Bool   // Stop was called

	failures atomic.Uint64         // errors the function returned and the handler went past
	lastErr  atomic.Pointer[error] // the last of them

	// Written by the handler goroutine before it closes done.
	err    error
	failed bool // err came from the function: an error it returned or a panic
}

// handled is what a Handler needs of its subscription, whatever its type.
type handled interface {
	Close() error
	Stats() SubscriptionStats
}

// A PanicError reports that a handler's function panicked. It is what Err,
// Wait and Stop of that Handler return.
type PanicError struct {
	Value    any    // the value the function passed to panic
	Stack    []byte // the handler goroutine's stack trace, taken where it panicked
	Cache    string // the cache of the topic
	Topic    string // the topic
	Page     uint64 // the page of the item being handled
	Sequence uint64 // the sequence of the item being handled
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("topics: handler of topic %s of cache %q panicked on item %d: %v", quoteName(e.Topic), e.Cache, e.Sequence, e.Value)
}

// Unwrap returns the panic's value if it is an error, else nil.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

var (
	errHandlerStopped = &endError{msg: "topics: handler stopped"}
	errHandlerExited  = errors.New("topics: handler function called runtime.Goexit or panicked with nil")
)

// Handle subscribes to the topic and calls fn for every item on a new
// goroutine, in order, until the handler ends (see Handler). The
// subscription starts as Subscribe's would, with the same options, and ends
// when ctx is done. Besides the options of Subscribe it takes StopOnError.
//
// fn gets a context derived from ctx: use it for work fn does on the item's
// behalf. It is cancelled when ctx is done, which is how to interrupt an
// item in progress; Stop lets the item finish.
//
// Handle returns the errors Subscribe returns, or an error wrapping
// ErrInvalidOption if fn is nil; it then has started nothing.
func (h *Topic[T]) Handle(ctx context.Context, fn func(context.Context, Item[T]) error, opts ...SubscribeOption) (*Handler, error) {
	mustContext(ctx)
	if fn == nil {
		return nil, fmt.Errorf("%w: nil handler function for topic %s", ErrInvalidOption, quoteName(h.name))
	}
	opts = append(slices.Clip(opts), forHandler)
	s, err := h.Subscribe(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return startHandler(ctx, s, fn, opts), nil
}

// Handle is Topic.Handle for the untyped topic of that name: it calls fn for
// every Value published to it with Publish or PublishString.
func (c *Cache) Handle(ctx context.Context, topic string, fn func(context.Context, Item[Value]) error, opts ...SubscribeOption) (*Handler, error) {
	mustContext(ctx)
	if fn == nil {
		return nil, fmt.Errorf("%w: nil handler function for topic %s", ErrInvalidOption, quoteName(topic))
	}
	opts = append(slices.Clip(opts), forHandler)
	s, err := c.Subscribe(ctx, topic, opts...)
	if err != nil {
		return nil, err
	}
	return startHandler(ctx, s, fn, opts), nil
}

// StopOnError makes a handler end with the first error its function
// returns, as Err, Wait and Stop then report, instead of going past it. Only
// Handle takes it; Subscribe refuses it with ErrInvalidOption.
func StopOnError() SubscribeOption {
	return subscribeOption(func(c *subscribeConfig) error {
		c.stopOnError = true
		return nil
	})
}

// forHandler marks the options of a subscription a Handle makes, which may
// hold handler options.
var forHandler = subscribeOption(func(c *subscribeConfig) error {
	c.handler = true
	return nil
})

func startHandler[T any](ctx context.Context, s *Subscription[T], fn func(context.Context, Item[T]) error, opts []SubscribeOption) *Handler {
	cfg, _ := buildSubscribeConfig(opts) // Subscribe accepted them
	fctx, cancel := context.WithCancelCause(ctx)
	h := &Handler{sub: s, cancel: cancel, done: make(chan struct{})}
	go runHandler(h, fctx, s, fn, cfg.stopOnError)
	return h
}

// runHandler is the handler's goroutine.
//
// One deferred function guards every call of fn: a panic ends the handler,
// so it need not be caught item by item, and a recover set up per call cost
// as much as the rest of a delivery.
func runHandler[T any](h *Handler, ctx context.Context, s *Subscription[T], fn func(context.Context, Item[T]) error, stopOnError bool) {
	h.gid.Store(goid())
	defer close(h.done)
	defer h.cancel(nil)
	defer s.closeByReader()
	// A runtime.Goexit in fn unwinds through here without returning.
	h.err, h.failed = errHandlerExited, true
	var cur handling // the item fn is handling
	returned := false
	defer func() {
		if returned {
			return
		}
		v := recover()
		if v == nil {
			// runtime.Goexit, which goes on unwinding, or (with
			// GODEBUG=panicnil=1) panic(nil).
			return
		}
		pe := &PanicError{
			Value:    v,
			Stack:    debug.Stack(),
			Cache:    s.topic.cache.name,
			Topic:    s.topic.name,
			Page:     cur.page,
			Sequence: cur.sequence,
		}
		h.err = pe
		s.topic.cache.logHandlerFailure(pe, true, s.topic.name, cur.page, cur.sequence)
	}()
	handle(h, ctx, s, fn, stopOnError, &cur)
	returned = true
}

// handling is where the item a handler's function is handling was
// published, for a panic.
type handling struct{ page, sequence uint64 }

// handle runs the handler's loop, with cur set to the item fn is handling.
// The subscription's own context (ctx's parent) ends it, and so does Stop,
// which closes it: All needs no context of its own. All reads in runs and
// checks for the end before each item, so Stop lets the item in hand finish
// and hands out no other.
func handle[T any](h *Handler, ctx context.Context, s *Subscription[T], fn func(context.Context, Item[T]) error, stopOnError bool, cur *handling) {
	for it, err := range s.All(context.Background()) {
		if err != nil {
			h.err, h.failed = err, false
			if h.stopped.Load() {
				h.err = errHandlerStopped
			}
			return
		}
		cur.page, cur.sequence = it.Page, it.Sequence
		if err := fn(ctx, it); err != nil {
			if stopOnError {
				h.err = err
				s.topic.cache.logHandlerFailure(err, true, it.Topic, it.Page, it.Sequence)
				return
			}
			h.failures.Add(1)
			// A copy, so that err itself does not escape: taking its address
			// would allocate it for every item, failed or not.
			last := err
			h.lastErr.Store(&last)
			s.topic.cache.logHandlerFailure(err, false, it.Topic, it.Page, it.Sequence)
		}
	}
}

// Stop stops the handler: its subscription is closed, so that the function
// is given no further item, and the item it is handling, if any, is
// finished: its context is not cancelled (cancel the context given to
// Handle to interrupt it). Items not yet given to the function are dropped,
// as they are when a Subscription is closed, and counted in the
// subscription's Unread. To handle everything published first, shut the
// cache down instead (Cache.Shutdown), which lets every handler finish.
//
// Stop waits for the function to return and the goroutine to end, unless it
// is called by the function itself, in which case it returns at once and
// the handler ends when the function returns. (Called from another
// goroutine that the function waits for, it deadlocks, as any wait for
// oneself does.)
//
// Stop returns the handler's failure: the error its function returned with
// StopOnError, or a *PanicError. It returns nil if the handler ended only
// because it was stopped or its subscription ended, and nil when called from
// the function. Stop is idempotent and safe to call from any goroutine.
func (h *Handler) Stop() error {
	h.stopped.Store(true)
	_ = h.sub.Close()
	select {
	case <-h.done:
	default:
		if h.gid.Load() == goid() {
			return nil // called from the function: waiting would never end
		}
		<-h.done
	}
	if h.failed {
		return h.err
	}
	return nil
}

// Failures returns how many times the function returned an error that the
// handler went past (without StopOnError), and the last such error, or nil.
func (h *Handler) Failures() (n uint64, last error) {
	n = h.failures.Load()
	if p := h.lastErr.Load(); p != nil {
		last = *p
	}
	return n, last
}

// Done returns a channel that is closed when the handler has ended and its
// goroutine has returned.
func (h *Handler) Done() <-chan struct{} { return h.done }

// Err returns nil while the handler runs. Once it has ended (Done is
// closed), it returns why: an error wrapping ErrClosed if it was stopped or
// its subscription ended (wrapping also the cause, as Subscription.Next's
// does), the error its function returned, or a *PanicError.
func (h *Handler) Err() error {
	select {
	case <-h.done:
		return h.err
	default:
		return nil
	}
}

// Wait waits for the handler to end and returns Err. It must not be called
// from the handler's function, which it would wait for forever.
func (h *Handler) Wait() error {
	<-h.done
	return h.err
}

// Stats returns a snapshot of the figures of the handler's subscription.
func (h *Handler) Stats() SubscriptionStats { return h.sub.Stats() }

// goid returns the calling goroutine's id, read from the first line of its
// stack trace ("goroutine 42 [running]:"), a format that tools such as
// goleak rely on as well. Stop uses it, once per call, to tell whether it is
// called by the handler's function.
//
// Rejected: a flag set while the function runs (it cannot tell the function
// calling Stop from another goroutine calling Stop while the function runs,
// and the latter must wait); a Stop that never waits (the caller could not
// know when the function is done with shared state).
func goid() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	b := bytes.TrimPrefix(buf[:n], []byte("goroutine "))
	var id uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}
