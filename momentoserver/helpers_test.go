package momentoserver_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/access"
	"github.com/ringbus/topics/momentoserver"
	"github.com/ringbus/topics/momentoserver/internal/wire"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// testKey signs the tokens of the tests' servers.
var testKey = []byte("momentoserver tests: 32 bytes or more of key")

// A harness is a server on 127.0.0.1 over an engine of its own, with a
// client connection to it. Everything is closed when the test ends.
type harness struct {
	t      testing.TB
	engine *topics.Engine
	auth   *access.Authority // nil in local mode
	srv    *momentoserver.Server
	addr   string
	cc     *grpc.ClientConn
}

type harnessConfig struct {
	local      bool
	engineOpts []topics.Option
	serverOpts []momentoserver.Option
	dialOpts   []grpc.DialOption
}

// startServer starts a server that demands tokens (or accepts every call,
// with local) and connects to it.
func startServer(t testing.TB, cfg harnessConfig) *harness {
	t.Helper()
	h := &harness{t: t, engine: topics.New(cfg.engineOpts...)}
	t.Cleanup(func() { h.engine.Close() })
	opts := cfg.serverOpts
	if cfg.local {
		opts = append(opts, momentoserver.LocalMode())
	} else {
		var err error
		h.auth, err = access.New(h.engine, access.WithKeys(testKey))
		require.NoError(t, err)
		opts = append(opts, momentoserver.WithAuthority(h.auth))
	}
	var err error
	h.srv, err = momentoserver.New(h.engine, opts...)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	h.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- h.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, h.srv.Shutdown(ctx))
		require.ErrorIs(t, <-served, momentoserver.ErrServerClosed)
	})
	h.cc = h.dial(cfg.dialOpts...)
	return h
}

// dial returns a new connection to the server, closed when the test ends.
func (h *harness) dial(opts ...grpc.DialOption) *grpc.ClientConn {
	h.t.Helper()
	cc, err := grpc.NewClient(h.addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	require.NoError(h.t, err)
	h.t.Cleanup(func() { cc.Close() })
	return cc
}

// token mints a token for id with the permissions, valid for a minute.
func (h *harness) token(id string, perms ...access.Permission) string {
	h.t.Helper()
	tok, err := h.auth.Mint(access.Token{ID: id, Expires: time.Now().Add(time.Minute), Permissions: perms})
	require.NoError(h.t, err)
	return tok
}

var admin = access.Permission{Role: access.PublishSubscribe, Cache: access.AllCaches(), Topic: access.AllTopics()}

func grant(role access.Role, cache string, topic access.TopicSelector) access.Permission {
	return access.Permission{Role: role, Cache: access.CacheName(cache), Topic: topic}
}

// client returns a client of the harness's connection that sends token.
func (h *harness) client(token string) *wire.Client { return wire.NewClient(h.cc, token) }

// cache creates a cache in the engine directly.
func (h *harness) cache(name string, opts ...topics.Option) *topics.Cache {
	h.t.Helper()
	c, err := h.engine.CreateCache(name, opts...)
	require.NoError(h.t, err)
	return c
}

// A receiver reads one subscription stream.
type receiver struct {
	t  testing.TB
	st *wire.Stream
}

// subscribe opens a stream for req, ended when the test ends, and checks
// that it starts with a heartbeat.
func subscribe(t testing.TB, c *wire.Client, req *wire.SubscriptionRequest) *receiver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return subscribeCtx(t, ctx, c, req)
}

// subscribeCtx is subscribe for a stream that ends with ctx. Once it
// returns, the server's subscription exists: the stream's first heartbeat
// comes after it.
func subscribeCtx(t testing.TB, ctx context.Context, c *wire.Client, req *wire.SubscriptionRequest) *receiver {
	t.Helper()
	st, err := c.Subscribe(ctx, req)
	require.NoError(t, err)
	r := &receiver{t: t, st: st}
	first, err := r.recv()
	require.NoError(t, err, "the stream's first message")
	require.Equal(t, wire.KindHeartbeat, first.Kind, "a stream starts with a heartbeat")
	return r
}

// subscribeErr opens a stream for req and returns the error that ends it
// before its first message.
func subscribeErr(t testing.TB, c *wire.Client, req *wire.SubscriptionRequest) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := c.Subscribe(ctx, req)
	if err != nil {
		return err
	}
	var m wire.SubscriptionItem
	err = st.Recv(&m)
	require.Error(t, err, "expected the stream to fail, got %+v", m)
	return err
}

func (r *receiver) recv() (wire.SubscriptionItem, error) {
	var m wire.SubscriptionItem
	err := r.st.Recv(&m)
	return m, err
}

// next returns the next item or discontinuity, skipping heartbeats.
func (r *receiver) next() wire.SubscriptionItem {
	r.t.Helper()
	for {
		m, err := r.recv()
		require.NoError(r.t, err)
		if m.Kind != wire.KindHeartbeat {
			return m
		}
	}
}

// item returns the next item, failing on anything but an item or a
// heartbeat.
func (r *receiver) item() wire.TopicItem {
	r.t.Helper()
	m := r.next()
	require.Equal(r.t, wire.KindItem, m.Kind, "expected an item, got %+v", m)
	return m.Item
}

// end reads until the stream ends and returns the error it ends with,
// failing on any item or discontinuity before it.
func (r *receiver) end() error {
	r.t.Helper()
	for {
		m, err := r.recv()
		if err != nil {
			return err
		}
		require.Equal(r.t, wire.KindHeartbeat, m.Kind, "expected the stream to end, got %+v", m)
	}
}

// requireCode checks that err is a gRPC status with the code.
func requireCode(t testing.TB, want codes.Code, err error) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, want, status.Code(err), "status of %v", err)
}

func text(s string) topics.Value { return topics.TextValue(s) }
