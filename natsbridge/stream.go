package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ringbus/topics"
)

// Repairs take several requests to JetStream; each gets at most stepTimeout,
// so that one lost while JetStream elects a leader is tried again, and they
// are spaced by a backoff from minBackoff to maxBackoff.
const (
	stepTimeout = time.Second
	minBackoff  = 10 * time.Millisecond
	maxBackoff  = 500 * time.Millisecond
)

// ensure makes t's stream ready to take items and returns its page. It
// creates the stream if it does not exist, writes its marker if it has none
// (a new stream, or one whose server restarted and lost its messages), and
// replaces it if its servers are gone. seen is the page under which the
// caller failed (0 if it knew none): if another caller has found another
// page meanwhile, ensure returns that one at once.
func (b *Bridge) ensure(ctx context.Context, t *topic, seen uint64) (uint64, error) {
	t.repair.Lock()
	defer t.repair.Unlock()
	if p := t.page(); p != 0 && p != seen {
		return p, nil
	}
	backoff := minBackoff
	var last error
	for attempt := 0; ; attempt++ {
		if b.closed.Load() {
			return 0, errClosed()
		}
		if attempt > 0 && !errors.Is(last, errChanged) {
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
		}
		if err := ctx.Err(); err != nil {
			if last == nil {
				return 0, unavailable(t, "opening", err)
			}
			return 0, unavailable(t, "opening", fmt.Errorf("%w (the last failure: %w)", err, last))
		}
		page, err := b.repair(ctx, t, seen)
		if err == nil {
			t.setPage(page)
			return page, nil
		}
		if errors.Is(err, ErrConflict) {
			return 0, err
		}
		last = err
	}
}

// repair takes one step towards a usable stream. It returns its page once it
// has one, or the error that calls for another step. Under t.repair.
func (b *Bridge) repair(ctx context.Context, t *topic, seen uint64) (uint64, error) {
	step, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	m, err := b.getMsg(step, t, 1)
	switch {
	case err == nil:
		p := t.markPage(m.Header.Get("Nats-Subject"))
		if p == 0 {
			return 0, fmt.Errorf("%w: message 1 of stream %s (topic %s of cache %q) is not a page marker", ErrConflict, t.stream, t.name, t.cache)
		}
		return p, nil
	case errors.Is(err, errNoMessage):
		return b.mark(step, t, seen)
	case errors.Is(err, errNoStream):
		return 0, b.repairStream(step, t)
	default:
		return 0, err
	}
}

// mark writes the marker of a new page into t's stream, which has none. Only
// an empty stream takes it, so two bridges marking at once write one marker.
func (b *Bridge) mark(ctx context.Context, t *topic, seen uint64) (uint64, error) {
	page := min(max(nowMicro(), t.maxPage.Load()+1, seen+1), topics.MaxPage)
	m := &nats.Msg{
		Subject: t.markPrefix + strconv.FormatUint(page, 10),
		Header:  nats.Header{hdrExpectLastSeq: {"0"}},
	}
	_, err := b.publishMsg(ctx, m)
	switch {
	case err == nil:
		if seen != 0 {
			b.log(slog.LevelWarn, "natsbridge: the stream of a topic had lost its items: new page", t, slog.Uint64("page", page), slog.Uint64("old_page", seen))
		}
		return page, nil
	case hasCode(err, codeWrongLastSeq):
		// Another bridge marked it first; or the stream holds messages but
		// not message 1, which no bridge does: an operator purged it, or
		// gave it an age limit. Start it afresh.
		if m, gerr := b.getMsg(ctx, t, 1); gerr == nil {
			if p := t.markPage(m.Header.Get("Nats-Subject")); p != 0 {
				return p, nil
			}
		} else if errors.Is(gerr, errNoMessage) {
			b.log(slog.LevelWarn, "natsbridge: the stream of a topic has no page marker: deleting it", t)
			if err := b.js.DeleteStream(ctx, t.stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				return 0, err
			}
		}
		return 0, err
	default:
		return 0, err
	}
}

// repairStream creates t's stream if it does not exist, or deletes it if
// none of its servers runs, for the next step to create it again.
func (b *Bridge) repairStream(ctx context.Context, t *topic) error {
	s, err := b.js.Stream(ctx, t.stream)
	var api *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err := b.js.CreateStream(ctx, b.streamConfig(t))
		if err == nil || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return errChanged // created, by us or another: the next step reads it
		}
		return err
	case errors.As(err, &api) && api.ErrorCode == codeStreamOffline:
		// Another bridge may have replaced the stream while this one
		// waited for the answer: if a stream answers now, it is the new one.
		if _, err := b.getMsg(ctx, t, 1); !errors.Is(err, errNoStream) {
			return errNoStream
		}
		b.log(slog.LevelWarn, "natsbridge: the servers of a topic's stream are gone: replacing the stream, with a new page", t)
		if err := b.js.DeleteStream(ctx, t.stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return err
		}
		return errChanged
	case err != nil:
		return err
	}
	// The stream exists and runs: it must be this topic's, and answer
	// direct gets.
	cfg := s.CachedInfo().Config
	if cfg.Metadata[metaCache] != t.cache || cfg.Metadata[metaTopic] != t.name || !cfg.AllowDirect {
		return fmt.Errorf("%w: stream %s is not the stream of topic %s of cache %q (metadata %v)", ErrConflict, t.stream, t.name, t.cache, maps.Collect(maps.All(cfg.Metadata)))
	}
	return errNoStream // it is starting: try again
}

// errChanged: a step changed the stream (made it, or deleted it): the next
// one goes at once.
var errChanged = errors.New("the stream changed")

// log logs a record about t, if the bridge has a logger.
func (b *Bridge) log(level slog.Level, msg string, t *topic, attrs ...slog.Attr) {
	if b.cfg.logger == nil {
		return
	}
	attrs = append(attrs, slog.String("cache", t.cache), slog.String("topic", t.name), slog.String("stream", t.stream))
	b.cfg.logger.LogAttrs(context.Background(), level, msg, attrs...)
}
