package natsbridge_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/natsbridge"
	"github.com/ringbus/topics/natsbridge/internal/natstest"
)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 20 * time.Second

// A process stands for one process of a service: its NATS connection, its
// bridge and its engine.
type process struct {
	nc     *nats.Conn
	bridge *natsbridge.Bridge
	engine *topics.Engine
}

// newProcess connects to server i of c and makes a bridge and an engine,
// all closed when the test ends.
func newProcess(t testing.TB, c *natstest.Cluster, i int, opts ...natsbridge.Option) *process {
	t.Helper()
	return bridgeProcess(t, c.Connect(i, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond)), opts...)
}

// newIsolatedProcess is newProcess connected to server i only: when that
// server is down, NATS is unreachable for it.
func newIsolatedProcess(t testing.TB, c *natstest.Cluster, i int, opts ...natsbridge.Option) *process {
	t.Helper()
	return bridgeProcess(t, c.ConnectOnly(i, nats.ReconnectWait(20*time.Millisecond)), opts...)
}

func bridgeProcess(t testing.TB, nc *nats.Conn, opts ...natsbridge.Option) *process {
	t.Helper()
	b, err := natsbridge.New(nc, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	e := b.NewEngine(topics.WithTopicIdleTimeout(time.Second))
	t.Cleanup(func() { e.Close() })
	return &process{nc: nc, bridge: b, engine: e}
}

// cache returns the process's cache of that name, creating it.
func (p *process) cache(t testing.TB, name string) *topics.Cache {
	t.Helper()
	c, err := p.engine.Cache(name)
	if err == nil {
		return c
	}
	c, err = p.engine.CreateCache(name)
	require.NoError(t, err)
	return c
}

func subscribe(t testing.TB, c *topics.Cache, topic string, opts ...topics.SubscribeOption) *topics.Subscription[topics.Value] {
	t.Helper()
	// The subscription lives as long as its context: the test's. The
	// bridge's timeout bounds the wait for the topic to open.
	s, err := c.Subscribe(t.Context(), topic, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func next(t testing.TB, s *topics.Subscription[topics.Value]) topics.Item[topics.Value] {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	it, err := s.Next(ctx)
	require.NoError(t, err)
	return it
}

func publish(t testing.TB, c *topics.Cache, topic, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	require.NoError(t, c.PublishString(ctx, topic, value))
}

// leaderOf returns the server that holds the stream of a topic.
func leaderOf(t testing.TB, c *natstest.Cluster, p *process, cache, topic string) *natstest.Node {
	t.Helper()
	js, err := jetstream.New(p.nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	s, err := js.Stream(ctx, natsbridge.StreamOf(p.bridge, cache, topic))
	require.NoError(t, err)
	name := s.CachedInfo().Cluster.Leader
	for _, nd := range c.Nodes() {
		if nd.Name() == name {
			return nd
		}
	}
	t.Fatalf("the stream of %s/%s is on %q, not a server of the cluster", cache, topic, name)
	return nil
}

// testLogger logs to the test's log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
