package momentoserver_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/access"
	"github.com/ringbus/topics/momentoserver/internal/wire"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// Items arrive in order, numbered from 1 on one page, text as text and
// binary as binary, stamped with the publishing token's ID.
func TestPublishSubscribe(t *testing.T) {
	h := startServer(t, harnessConfig{})
	h.cache("chat")
	pub := h.client(h.token("ada", grant(access.PublishOnly, "chat", access.TopicPrefix("room/"))))
	sub := h.client(h.token("bob", grant(access.SubscribeOnly, "chat", access.TopicName("room/1"))))
	ctx := context.Background()

	r := subscribe(t, sub, &wire.SubscriptionRequest{CacheName: "chat", Topic: "room/1"})
	values := []topics.Value{text("hello"), topics.BytesValue([]byte{0, 1, 2, 0xff}), text(""), topics.BytesValue(nil), text("ünïcödé")}
	for _, v := range values {
		require.NoError(t, pub.Publish(ctx, "chat", "room/1", v))
	}
	var page uint64
	for i, want := range values {
		it := r.item()
		require.Equal(t, uint64(i+1), it.TopicSequenceNumber)
		require.Equal(t, "ada", it.PublisherID)
		require.Equal(t, want.IsText(), it.Value.IsText(), "item %d: text or binary", i+1)
		require.Equal(t, want.String(), it.Value.String())
		if i == 0 {
			page = it.SequencePage
			require.NotZero(t, page)
			require.LessOrEqual(t, page, uint64(topics.MaxPage), "pages fit in 53 bits")
		}
		require.Equal(t, page, it.SequencePage, "one page")
	}
}

func TestLocalModeAcceptsAnyToken(t *testing.T) {
	h := startServer(t, harnessConfig{local: true})
	ctx := context.Background()
	for _, token := range []string{"", "anything at all"} {
		c := h.client(token)
		name := fmt.Sprintf("cache-%d", len(token))
		require.NoError(t, c.CreateCache(ctx, name))
		r := subscribe(t, c, &wire.SubscriptionRequest{CacheName: name, Topic: "t"})
		require.NoError(t, c.Publish(ctx, name, "t", text("hi")))
		it := r.item()
		require.Equal(t, uint64(1), it.TopicSequenceNumber)
		require.Equal(t, "", it.PublisherID, "local mode publishes anonymously")
	}
}

func TestPublishErrors(t *testing.T) {
	h := startServer(t, harnessConfig{})
	h.cache("chat")
	ctx := context.Background()
	c := h.client(h.token("ada", grant(access.PublishSubscribe, "chat", access.TopicPrefix("room/"))))

	requireCode(t, codes.PermissionDenied, c.Publish(ctx, "chat", "lobby", text("x")))
	requireCode(t, codes.PermissionDenied, c.Publish(ctx, "other", "room/1", text("x")))
	requireCode(t, codes.InvalidArgument, c.Publish(ctx, "chat", "room/ bad", text("x")))
	requireCode(t, codes.Unauthenticated, h.client("").Publish(ctx, "chat", "room/1", text("x")))
	requireCode(t, codes.Unauthenticated, h.client("forged").Publish(ctx, "chat", "room/1", text("x")))
	requireCode(t, codes.PermissionDenied, subscribeErr(t, c, &wire.SubscriptionRequest{CacheName: "chat", Topic: "lobby"}))
	requireCode(t, codes.Unauthenticated, subscribeErr(t, h.client(""), &wire.SubscriptionRequest{CacheName: "chat", Topic: "room/1"}))

	all := h.client(h.token("root", admin))
	requireCode(t, codes.NotFound, all.Publish(ctx, "missing", "t", text("x")))
	requireCode(t, codes.NotFound, subscribeErr(t, all, &wire.SubscriptionRequest{CacheName: "missing", Topic: "t"}))
}
