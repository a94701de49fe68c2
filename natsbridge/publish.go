package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ringbus/topics"
)

// publish sends one item of a topic to its stream, and returns once
// JetStream has acknowledged it: once it has its page and sequence. If the
// stream is missing, has no marker or names another page, publish repairs
// that (see ensure) and sends the item again; it fails with ErrUnavailable
// when NATS does not answer within the bridge's timeout or ctx.
func (b *Bridge) publish(ctx context.Context, cache, name, publisher string, v topics.Value) error {
	if b.closed.Load() {
		return errClosed()
	}
	t := b.topic(cache, name)
	t.lastUse.Store(time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()

	page := t.page()
	backoff := minBackoff
	for attempt := 0; ; attempt++ {
		if !b.nc.IsConnected() {
			// Fail at once rather than leave the item in the connection's
			// buffer, to be sent after the error was returned.
			return unavailable(t, "publishing to", fmt.Errorf("the NATS connection is %v", b.nc.Status()))
		}
		if page == 0 || attempt > 0 {
			p, err := b.ensure(ctx, t, page)
			if err != nil {
				return err
			}
			if p == page && attempt > 1 {
				// The stream looks right but did not take the item: it is
				// starting, or JetStream is electing its servers.
				select {
				case <-ctx.Done():
					return unavailable(t, "publishing to", ctx.Err())
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, maxBackoff)
			}
			page = p
		}
		seq, err := b.publishMsg(ctx, t.item(page, publisher, v))
		switch {
		case err == nil:
			b.awaitLocal(ctx, t, page, seq-1)
			return nil
		case errors.Is(err, errNoStream), hasCode(err, codeWrongLastSeq):
			continue // repair, and try again
		case ctx.Err() != nil, isTimeout(err), isConnError(err):
			return unavailable(t, "publishing to", err)
		default:
			return fmt.Errorf("natsbridge: publishing to topic %s of cache %q: %w", t.name, t.cache, err)
		}
	}
}

// awaitLocal waits until the feeds of t in this process have put item of
// page, so that a subscription opened after Publish returns starts after it
// (as in one process), and a Lossless one holds up publishers. The item is
// published already: when ctx ends first, Publish still succeeds.
func (b *Bridge) awaitLocal(ctx context.Context, t *topic, page, item uint64) {
	b.mu.RLock()
	var local []*feed
	if len(t.local) > 0 {
		local = slices.Clone(t.local)
	}
	b.mu.RUnlock()
	for _, fd := range local {
		fd.prog.await(ctx, page, item)
	}
}

// item returns the message of an item of page.
func (t *topic) item(page uint64, publisher string, v topics.Value) *nats.Msg {
	h := t.hdr.Load()
	if h == nil || h.page != page {
		h = newPageHeaders(t, page)
	}
	hdr := h.bin
	if v.IsText() {
		hdr = h.text
	}
	if publisher != "" {
		hdr = maps.Clone(hdr)
		hdr[hdrPublisher] = []string{publisher}
	}
	return &nats.Msg{Subject: t.in, Data: v.Bytes(), Header: hdr}
}

// isConnError reports whether err says the connection is not usable.
func isConnError(err error) bool {
	return errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrConnectionDraining) || errors.Is(err, nats.ErrDisconnected)
}
