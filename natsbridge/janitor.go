package natsbridge

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Idle topics. A process forgets a topic it has not used for the idle
// timeout. JetStream holds a topic's stream until some bridge deletes it:
// every bridge looks, every half idle timeout or so, for the streams of its
// prefix that nothing was published to for the idle timeout, and deletes
// each one that no process subscribes to. To know that, it sends a probe on
// the subject the stream republishes to: the feed of any process that
// subscribes answers it; no responder at all means no subscriber anywhere.
// Rejected: deleting streams when this process's engine drops a topic
// (Sequencer.Close), which knows nothing of other processes and never
// happens for topics that were only published to; JetStream's own limits
// (MaxAge) expire messages, not streams, and would expire the marker too.

// probeTimeout bounds the wait for an answer to a probe.
const probeTimeout = time.Second

// janitor sweeps every half idle timeout, give or take a quarter, until the
// bridge is closed.
func (b *Bridge) janitor() {
	defer b.wg.Done()
	for {
		d := b.cfg.idle/4 + rand.N(b.cfg.idle/2+1)
		timer := time.NewTimer(d)
		select {
		case <-b.ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		b.sweep(b.ctx)
	}
}

// sweep forgets the topics this process has not used for the idle timeout,
// and deletes the idle streams that no process subscribes to.
func (b *Bridge) sweep(ctx context.Context) {
	now := time.Now()
	b.mu.Lock()
	for k, t := range b.topics {
		if len(t.local) == 0 && now.Sub(time.Unix(0, t.lastUse.Load())) > b.cfg.idle {
			delete(b.topics, k)
		}
	}
	b.mu.Unlock()

	streams := b.js.ListStreams(ctx, jetstream.WithStreamListSubject(b.cfg.prefix+".i.*"))
	for info := range streams.Info() {
		cache, name := info.Config.Metadata[metaCache], info.Config.Metadata[metaTopic]
		t := newTopic(b.cfg.prefix, cache, name)
		if t.stream != info.Config.Name {
			continue // not a stream of a bridge
		}
		last := info.State.LastTime
		if info.Created.After(last) {
			last = info.Created
		}
		if now.Sub(last) < b.cfg.idle || b.subscribed(ctx, t) {
			continue
		}
		err := b.js.DeleteStream(ctx, t.stream)
		switch {
		case err == nil:
			b.log(slog.LevelInfo, "natsbridge: deleted an idle topic's stream", t, slog.Time("last_item", last))
		case !errors.Is(err, jetstream.ErrStreamNotFound):
			b.log(slog.LevelWarn, "natsbridge: could not delete an idle topic's stream", t, slog.Any("error", err))
		}
	}
}

// subscribed reports whether a process subscribes to t, or may: only a
// probe that no one could receive says no.
func (b *Bridge) subscribed(ctx context.Context, t *topic) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	m := nats.NewMsg(t.out)
	m.Header.Set(hdrProbe, "1")
	_, err := b.nc.RequestMsgWithContext(ctx, m)
	return !errors.Is(err, nats.ErrNoResponders)
}
