package natsbridge

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ringbus/topics"
)

// A feed puts the items of one topic into its topics.Feed in this process.
// It reads them from one core NATS subscription to the subject the topic's
// stream republishes its items on: however many subscriptions the topic
// has in this process, NATS delivers each item to the process once, and the
// engine's ring hands it to every subscription.
//
// Every item carries its stream sequence and, in the marker subject it was
// published against, its page: item n of a page is the stream's message
// n+1. A feed puts items in order; when one does not follow the last it put
// (the process missed some: its connection dropped, or it fell behind and
// NATS dropped messages), or starts a new page, the feed first fetches what
// lies between from the stream (direct gets). What the stream no longer
// holds is reported to the topic's subscriptions as missed, by the Feed,
// from the gap in the sequences.
//
// A feed's goroutine owns its state; Close and the bridge stop it through
// its context.
type feed struct {
	b      *Bridge
	t      *topic
	f      *topics.Feed
	ctx    context.Context // ends with the feed
	cancel context.CancelFunc
	msgs   chan *nats.Msg
	wake   chan struct{} // the connection is back: catch up

	page, last uint64 // the page and item put last

	prog progress // page and last, for publishers to wait on
}

// A feed's subscription holds up to its window of messages (at least
// minFeedBuffer, at most maxFeedBuffer) while the feed is busy putting or
// fetching. Beyond that NATS drops them, and the feed fetches them from the
// stream when the next one arrives. 8 bytes each, allocated with the feed.
const (
	minFeedBuffer = 256
	maxFeedBuffer = 8192
)

// open starts feeding f (Sequencer.Open).
func (b *Bridge) open(f *topics.Feed) {
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		f.Fail(errClosed())
		return
	}
	k := topicKey{f.Cache(), f.Topic()}
	t := b.topics[k]
	if t == nil {
		t = newTopic(b.cfg.prefix, k.cache, k.name)
		b.topics[k] = t
	}
	t.lastUse.Store(time.Now().UnixNano())
	ctx, cancel := context.WithCancel(context.Background())
	fd := &feed{
		b:      b,
		t:      t,
		f:      f,
		ctx:    ctx,
		cancel: cancel,
		msgs:   make(chan *nats.Msg, min(max(b.cfg.window, minFeedBuffer), maxFeedBuffer)),
		wake:   make(chan struct{}, 1),
	}
	b.feeds[f] = fd
	t.local = append(t.local, fd)
	b.wg.Add(1)
	b.mu.Unlock()
	go fd.run()
}

// closeFeed stops feeding f (Sequencer.Close).
func (b *Bridge) closeFeed(f *topics.Feed) {
	b.mu.Lock()
	fd := b.feeds[f]
	b.forget(fd)
	b.mu.Unlock()
	if fd != nil {
		fd.cancel()
	}
}

// forget removes fd from the open feeds, if it is there. Under b.mu.
func (b *Bridge) forget(fd *feed) {
	if fd == nil || b.feeds[fd.f] != fd {
		return
	}
	delete(b.feeds, fd.f)
	fd.t.local = slices.DeleteFunc(fd.t.local, func(x *feed) bool { return x == fd })
	fd.t.lastUse.Store(time.Now().UnixNano())
}

// catchUpSoon asks the feed to fetch what it may have missed.
func (fd *feed) catchUpSoon() {
	select {
	case fd.wake <- struct{}{}:
	default:
	}
}

func (fd *feed) run() {
	b := fd.b
	defer b.wg.Done()
	defer func() {
		fd.cancel()
		fd.prog.end()
		b.mu.Lock()
		b.forget(fd)
		b.mu.Unlock()
	}()
	sub, err := b.nc.ChanSubscribe(fd.t.out, fd.msgs)
	if err != nil {
		fd.f.Fail(unavailable(fd.t, "subscribing to", err))
		return
	}
	defer sub.Unsubscribe()
	if err := fd.start(); err != nil {
		fd.f.Fail(err)
		return
	}
	// After a reconnection the feed catches up, and tries again, with a
	// backoff, until it has reached the stream (or learnt that there is
	// none): items published while it was away arrive on no subscription.
	retry := time.NewTimer(0)
	retry.Stop()
	defer retry.Stop()
	backoff := minBackoff
	for {
		select {
		case <-fd.ctx.Done():
			return
		case m := <-fd.msgs:
			if !fd.handle(m) {
				return
			}
		case <-fd.wake:
			backoff = minBackoff
			retry.Reset(0)
		case <-retry.C:
			done, ok := fd.catchUpOnce()
			if !ok {
				return
			}
			if !done {
				retry.Reset(backoff)
				backoff = min(2*backoff, maxRetryBackoff)
			}
		}
	}
}

// maxRetryBackoff is the longest wait between two attempts of a feed to
// catch up after a reconnection.
const maxRetryBackoff = 2 * time.Second

// catchUpOnce tries to fetch what the feed may have missed while the
// connection was down. It returns done once it has reached the stream, or
// found that there is no stream to catch up with, and ok false when the
// feed has ended.
func (fd *feed) catchUpOnce() (done, ok bool) {
	ctx, cancel := context.WithTimeout(fd.ctx, fd.b.cfg.timeout)
	defer cancel()
	err := fd.sync(ctx, 0, 0)
	switch {
	case fd.ctx.Err() != nil:
		return false, false
	case err == nil, errors.Is(err, errNoMessage):
		return true, true
	case errors.Is(err, errNoStream):
		// None answers: gone (a publish will make it again, on a page that
		// arrives here), or not reachable yet.
		step, cancel := context.WithTimeout(ctx, stepTimeout)
		defer cancel()
		_, err = fd.b.js.Stream(step, fd.t.stream)
		var api *jetstream.APIError
		gone := errors.Is(err, jetstream.ErrStreamNotFound) || errors.As(err, &api) && api.ErrorCode == codeStreamOffline
		return gone, true
	default:
		return false, true
	}
}

// start puts the items the stream holds, which ResumeAt can reach, and
// makes the topic ready. The subscription is in place first (Flush), so
// that what the stream takes after the fetch arrives on it.
func (fd *feed) start() error {
	b, t := fd.b, fd.t
	ctx, cancel := context.WithTimeout(fd.ctx, b.cfg.timeout)
	defer cancel()
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return unavailable(t, "subscribing to", err)
	}
	var seen uint64
	backoff := minBackoff
	for {
		if _, err := b.ensure(ctx, t, seen); err != nil {
			return err
		}
		err := fd.sync(ctx, 0, 0)
		if err == nil {
			break
		}
		switch {
		case fd.ctx.Err() != nil:
			return errClosed()
		case ctx.Err() != nil:
			return unavailable(t, "opening", err)
		case errors.Is(err, errNoStream), errors.Is(err, errNoMessage):
			seen = t.page() // gone again: repair it
		default:
			// A request lost (the stream was being deleted, or its
			// server elected): try again.
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
		}
	}
	if err := fd.f.Ready(fd.page, fd.last); err != nil {
		return err
	}
	fd.prog.advance(fd.page, fd.last)
	return nil
}

// handle takes one message from the subscription. It returns false when the
// feed has ended.
func (fd *feed) handle(m *nats.Msg) bool {
	if m.Header.Get(hdrProbe) != "" {
		if m.Reply != "" {
			fd.b.nc.Publish(m.Reply, nil) // someone subscribes: keep the stream
		}
		return true
	}
	seq := sequenceOf(m)
	page := fd.t.markPage(m.Header.Get(hdrExpectSubject))
	if seq < 2 || page == 0 {
		return true // not an item
	}
	item := seq - 1
	switch {
	case page < fd.page, page == fd.page && item <= fd.last:
		return true // fetched already, or of a page gone by
	case page == fd.page && item == fd.last+1:
		return fd.put(m, page, item)
	}
	// A gap, or a new page: fetch what lies between.
	if !fd.catchUp(page, seq-1) {
		return false
	}
	if page < fd.page || page == fd.page && item <= fd.last {
		return true
	}
	return fd.put(m, page, item)
}

// catchUp fetches from the stream the items after the last one put, of the
// stream's current page, up to stream sequence upTo if that page is page
// (to the newest otherwise), and puts them. What it cannot fetch stays
// missing. It returns false when the feed has ended.
func (fd *feed) catchUp(page, upTo uint64) bool {
	ctx, cancel := context.WithTimeout(fd.ctx, fd.b.cfg.timeout)
	defer cancel()
	err := fd.sync(ctx, page, upTo)
	if fd.ctx.Err() != nil {
		return false
	}
	if err != nil && !errors.Is(err, errNoStream) && !errors.Is(err, errNoMessage) {
		fd.b.log(slog.LevelWarn, "natsbridge: could not fetch missed items", fd.t, slog.Any("error", err))
	}
	return true
}

// sync reads the stream's marker and puts the items after the last one
// put, up to upTo if the stream's page is page. It returns errNoStream or
// errNoMessage if the stream has no page, and the error of the feed's
// context once the feed has ended.
func (fd *feed) sync(ctx context.Context, page, upTo uint64) error {
	b, t := fd.b, fd.t
	step, cancel := context.WithTimeout(ctx, stepTimeout)
	m, err := b.getMsg(step, t, 1)
	cancel()
	if err != nil {
		return err
	}
	current := t.markPage(m.Header.Get("Nats-Subject"))
	switch {
	case current == 0:
		return errNoMessage
	case current < fd.page:
		// A page older than one already put: a bridge whose clock is
		// behind started it. Its items cannot be put after the newer ones.
		b.log(slog.LevelError, "natsbridge: a topic's stream went back to an older page (are the clocks of the processes far apart?)", t,
			slog.Uint64("page", current), slog.Uint64("page_put", fd.page))
		return nil
	case current > fd.page:
		fd.page, fd.last = current, 0
		t.setPage(current)
	}
	if current != page {
		upTo = 0
	}
	for rounds := 0; rounds < 4; rounds++ {
		from := fd.last + 2 // the stream sequence after the last item put
		if upTo != 0 && from > upTo {
			return nil
		}
		n := b.cfg.window
		if upTo != 0 {
			n = int(min(upTo-from+1, uint64(n)))
		}
		step, cancel := context.WithTimeout(ctx, stepTimeout)
		msgs, more, err := b.getItems(step, t, from, n, upTo)
		cancel()
		for _, m := range msgs {
			if t.markPage(m.Header.Get(hdrExpectSubject)) != current {
				return nil // the stream was replaced meanwhile
			}
			if !fd.put(m, current, sequenceOf(m)-1) {
				return fd.ctx.Err()
			}
		}
		if err != nil || !more || len(msgs) == 0 {
			return err
		}
	}
	return nil
}

// put puts one item. It returns false when the feed has ended.
func (fd *feed) put(m *nats.Msg, page, item uint64) bool {
	if item <= fd.last && page == fd.page {
		return true
	}
	var v topics.Value
	if m.Header.Get(hdrText) != "" {
		v = topics.TextValue(unsafe.String(unsafe.SliceData(m.Data), len(m.Data))) // copies
	} else {
		v = topics.BytesValue(m.Data)
	}
	err := fd.f.Put(fd.ctx, page, item, m.Header.Get(hdrPublisher), v)
	switch {
	case err == nil:
		if page != fd.page {
			fd.t.adopt(page)
		}
		fd.page, fd.last = page, item
		fd.prog.advance(page, item)
		return true
	case errors.Is(err, topics.ErrClosed), fd.ctx.Err() != nil:
		return false
	default:
		fd.b.log(slog.LevelError, "natsbridge: an item could not be put", fd.t, slog.Any("error", err))
		return true
	}
}
