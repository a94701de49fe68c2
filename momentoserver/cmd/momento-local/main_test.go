package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/momentoserver/internal/wire"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testKeys = base64.StdEncoding.EncodeToString([]byte("momento-local tests: a key of 32 bytes or more"))

// serve runs the command with args until the test ends, and returns a
// client connection to it.
func serve(t *testing.T, args ...string) *grpc.ClientConn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), &out, &out, func(a net.Addr) { addrs <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-done:
		cancel()
		t.Fatalf("momento-local %v: %v\n%s", args, err, out.String())
	}
	cc, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		cc.Close()
		cancel() // as SIGINT does
		require.NoError(t, <-done)
		require.Contains(t, out.String(), "momento-local: stopped")
	})
	return cc
}

func TestServeLocal(t *testing.T) {
	cc := serve(t, "-local", "-caches", "a, b", "-ring-size", "64", "-heartbeat", "1s")
	c := wire.NewClient(cc, "")
	ctx := context.Background()
	names, err := c.ListCaches(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, names)

	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := c.Subscribe(sctx, &wire.SubscriptionRequest{CacheName: "a", Topic: "t"})
	require.NoError(t, err)
	var m wire.SubscriptionItem
	require.NoError(t, st.Recv(&m))
	require.Equal(t, wire.KindHeartbeat, m.Kind)
	require.NoError(t, c.Publish(ctx, "a", "t", topics.TextValue("hi")))
	require.NoError(t, st.Recv(&m))
	require.Equal(t, wire.KindItem, m.Kind)
	require.Equal(t, "hi", m.Item.Value.String())
}

func TestServeWithKeysAndMint(t *testing.T) {
	cc := serve(t, "-keys", testKeys, "-caches", "chat")
	var out, errOut bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"mint", "-keys", testKeys, "-id", "ada", "-cache", "chat", "-topic-prefix", "room/", "-raw"}, &out, &errOut, nil))
	token := strings.TrimSpace(out.String())
	c := wire.NewClient(cc, token)
	ctx := context.Background()
	require.NoError(t, c.Publish(ctx, "chat", "room/1", topics.TextValue("hi")))
	require.Error(t, c.Publish(ctx, "chat", "lobby", topics.TextValue("hi")), "outside the grant")
	require.Error(t, wire.NewClient(cc, "").Publish(ctx, "chat", "room/1", topics.TextValue("hi")), "no token")

	// Without -raw: the SDKs' disposable-token form.
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"mint", "-keys", testKeys, "-id", "root", "-cache", "*", "-endpoint", "127.0.0.1:9", "-ttl", "10m"}, &out, &errOut, nil))
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out.String()))
	require.NoError(t, err)
	var sdk struct {
		APIKey   string `json:"api_key"`
		Endpoint string `json:"endpoint"`
	}
	require.NoError(t, json.Unmarshal(raw, &sdk))
	require.Equal(t, "127.0.0.1:9", sdk.Endpoint)
	require.NoError(t, wire.NewClient(cc, sdk.APIKey).CreateCache(ctx, "new"), "every cache and topic: an administrator")
}

func TestUsageErrors(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{},                                // neither -keys nor -local
		{"-local", "-keys", testKeys},     // both
		{"-local", "-ring-size", "3"},     // not a power of two
		{"-keys", "not base64!"},          // a bad key
		{"-keys", "c2hvcnQ="},             // a short key
		{"-local", "-caches", "bad name"}, // a bad cache name
		{"-local", "-heartbeat", "0s"},    // no heartbeat
		{"-local", "stray"},               // an argument
		{"mint", "-keys", testKeys},       // no -id, no -cache
		{"mint", "-keys", testKeys, "-id", "a", "-cache", "c", "-role", "admin"},
	} {
		if len(args) == 0 || args[0] != "mint" {
			args = append([]string{"-addr", "127.0.0.1:0"}, args...) // should one serve after all
		}
		var out bytes.Buffer
		require.Error(t, run(ctx, args, &out, &out, nil), "%q", args)
	}
}
