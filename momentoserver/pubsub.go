package momentoserver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/momentoserver/internal/wire"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// empty is the response of Publish and of the control calls that return
// nothing. Messages are only read once handed to gRPC: one serves all.
var empty = &wire.Empty{}

// callError returns err as the status of a unary call, with its trailer.
func callError(ctx context.Context, err error) error {
	st, md := statusOf(err)
	if md != nil {
		_ = grpc.SetTrailer(ctx, md) // fails only if the call is over: nobody to tell
	}
	return st.Err()
}

// streamError returns err as the status that ends a stream, with its
// trailer.
func streamError(stream grpc.ServerStream, err error) error {
	st, md := statusOf(err)
	if md != nil {
		stream.SetTrailer(md)
	}
	return st.Err()
}

var errNoValue = status.Error(codes.InvalidArgument, "momentoserver: publish request without a value")

func (s *Server) publish(ctx context.Context, req *wire.PublishRequest) (wire.Message, error) {
	c, err := s.callerOfCall(ctx)
	if err != nil {
		return nil, callError(ctx, err)
	}
	if !req.HasValue {
		return nil, errNoValue
	}
	if err := c.publish(ctx, req.CacheName, req.Topic, req.Value); err != nil {
		return nil, callError(ctx, err)
	}
	return empty, nil
}

// subscribeBatch is how many items a stream takes from its subscription at
// a time.
const subscribeBatch = 64

func (s *Server) subscribe(req *wire.SubscriptionRequest, stream grpc.ServerStream) error {
	ctx := stream.Context()
	c, err := s.callerOfCall(ctx)
	if err != nil {
		return streamError(stream, err)
	}
	// The subscription ends with the stream, when the server shuts down,
	// and a little before the call's deadline, if it has one.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(s.down, func() { cancel(context.Cause(s.down)) })
	defer stop()
	if deadline, ok := ctx.Deadline(); ok {
		var cancelEarly context.CancelFunc
		ctx, cancelEarly = context.WithDeadlineCause(ctx, deadline.Add(-deadlineMargin(time.Until(deadline))), errDeadline)
		defer cancelEarly()
	}

	var (
		opts []topics.SubscribeOption
		pos  position
	)
	if req.ResumeAtTopicSequenceNumber > 0 {
		var opt topics.SubscribeOption
		opt, pos = s.resumeAt(req, resumesAfterLast(ctx))
		opts = append(opts, opt)
	}
	sub, err := c.subscribe(ctx, req.CacheName, req.Topic, opts...)
	if err != nil {
		return streamError(stream, err)
	}
	defer sub.Close()

	w := &streamWriter{stream: stream, pos: pos}
	if err := w.heartbeat(); err != nil { // every stream starts with one
		return err
	}
	beats := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.beat(beats, s.heartbeat)
	}()
	defer func() {
		close(beats)
		wg.Wait() // no Send after the handler returns
	}()

	items := make([]topics.Item[topics.Value], subscribeBatch)
	for {
		// The subscription ends with ctx: Next needs no context of its own.
		n, err := sub.NextBatch(context.Background(), items)
		if err != nil {
			return streamError(stream, err)
		}
		if err := w.items(items[:n]); err != nil {
			return err
		}
		clear(items[:n]) // hold no payload longer than needed
	}
}

// errDeadline ends a stream whose call has a deadline just before it.
//
// At the deadline, gRPC-Go resets the stream (RST_STREAM with CANCEL), which
// gRPC for JavaScript reports as CANCELLED, and the Node.js SDK does not
// resubscribe after CANCELLED. That SDK puts a deadline of a few seconds on
// the first Subscribe call of every subscription; when the server's reset
// arrives before the client's own timer fires, as it does on a busy client,
// the subscription would end for good. Ending the stream first, with
// DEADLINE_EXCEEDED, makes the SDK resubscribe, resuming where it was.
var errDeadline = fmt.Errorf("momentoserver: the call's deadline is near: %w", context.DeadlineExceeded)

// deadlineMargin is how long before its deadline a stream ends: a tenth of
// the time left, at most half a second.
func deadlineMargin(left time.Duration) time.Duration {
	return min(left/10, 500*time.Millisecond)
}

// resumeAt returns the option that resumes a subscription where req asks,
// and what the client is then known to hold.
//
// resume_at_topic_sequence_number is the first item wanted, as the protocol
// says and most SDKs send it. The Momento Go SDK sends instead the last item
// it received when it reconnects (and never drops an item it has seen), so
// for its calls (lastReceived) the server starts one item later: its user
// gets no item twice. A request without a page (0) means the topic's
// current page.
func (s *Server) resumeAt(req *wire.SubscriptionRequest, lastReceived bool) (topics.SubscribeOption, position) {
	first := req.ResumeAtTopicSequenceNumber
	if lastReceived {
		first++
	}
	page := req.SequencePage
	if page == 0 {
		if c, err := s.engine.Cache(req.CacheName); err == nil {
			st, _ := c.TopicStats(req.Topic)
			page = st.Page
		}
	}
	return topics.ResumeAt(page, first), position{page: req.SequencePage, last: first - 1}
}

// resumesAfterLast reports whether the call comes from the Momento Go SDK,
// which resumes at the last item it received: a gRPC-Go client that names
// the cache in a "cache" header, as that SDK does on every call (the Node.js
// SDK uses gRPC for JavaScript and sends no such header on topic calls).
func resumesAfterLast(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	if len(md.Get("cache")) == 0 {
		return false
	}
	for _, ua := range md.Get("user-agent") {
		if strings.Contains(ua, "grpc-go/") {
			return true
		}
	}
	return false
}

// position is what a client is known to hold of a topic: item last of page,
// or nothing known (page 0).
type position struct {
	page, last uint64
}

// next returns the discontinuity to send before item it, if there is one,
// and moves p to it. The discontinuity's last_topic_sequence is the last
// item before the gap, its new_topic_sequence the item after which the
// stream goes on: the items in between, new - last of them, were lost, and
// the next item is new + 1. (A client that resumes after new_topic_sequence,
// as the Node.js SDK does, skips nothing.) A new page is a discontinuity
// too, from the last item known on the old page.
func (p *position) next(it *topics.Item[topics.Value]) (wire.Discontinuity, bool) {
	var (
		d   wire.Discontinuity
		gap bool
	)
	switch {
	case p.page != 0 && p.page != it.Page:
		d, gap = wire.Discontinuity{LastTopicSequence: p.last, NewTopicSequence: it.Sequence - 1, NewSequencePage: it.Page}, true
	case it.Missed > 0:
		d, gap = wire.Discontinuity{LastTopicSequence: it.Sequence - it.Missed - 1, NewTopicSequence: it.Sequence - 1, NewSequencePage: it.Page}, true
	}
	p.page, p.last = it.Page, it.Sequence
	return d, gap
}

// A streamWriter sends a subscription's messages on its stream, from the
// handler's goroutine (items) and the heartbeat goroutine (beat); the mutex
// keeps their sends apart, as gRPC requires.
type streamWriter struct {
	stream grpc.ServerStream

	mu    sync.Mutex
	quiet bool                  // nothing was sent since the last heartbeat tick
	msg   wire.SubscriptionItem // reused: gRPC encodes it before SendMsg returns
	pos   position
}

func (w *streamWriter) heartbeat() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msg = wire.SubscriptionItem{Kind: wire.KindHeartbeat}
	return w.stream.SendMsg(&w.msg)
}

// items sends items, each after the discontinuity before it, if any.
func (w *streamWriter) items(items []topics.Item[topics.Value]) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.quiet = false
	for i := range items {
		it := &items[i]
		if d, gap := w.pos.next(it); gap {
			w.msg = wire.SubscriptionItem{Kind: wire.KindDiscontinuity, Discontinuity: d}
			if err := w.stream.SendMsg(&w.msg); err != nil {
				return err
			}
		}
		w.msg = wire.SubscriptionItem{Kind: wire.KindItem, Item: wire.TopicItem{
			TopicSequenceNumber: it.Sequence,
			Value:               it.Value,
			PublisherID:         it.Publisher,
			SequencePage:        it.Page,
		}}
		if err := w.stream.SendMsg(&w.msg); err != nil {
			return err
		}
	}
	w.msg.Item.Value = topics.Value{} // hold no payload
	return nil
}

// beat sends a heartbeat every interval in which nothing else was sent,
// until done is closed or a send fails.
func (w *streamWriter) beat(done <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		w.mu.Lock()
		quiet := w.quiet
		w.quiet = true
		w.mu.Unlock()
		if quiet {
			if err := w.heartbeat(); err != nil {
				return
			}
		}
	}
}
