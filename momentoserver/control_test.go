package momentoserver_test

import (
	"context"
	"testing"

	"github.com/ringbus/topics/access"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// An administrator's token creates, lists and deletes caches, and gets the
// codes the SDKs map to their errors.
func TestControlAdministrator(t *testing.T) {
	h := startServer(t, harnessConfig{})
	c := h.client(h.token("root", admin))
	ctx := context.Background()

	require.NoError(t, c.CreateCache(ctx, "b"))
	require.NoError(t, c.CreateCache(ctx, "a"))
	requireCode(t, codes.AlreadyExists, c.CreateCache(ctx, "a"))
	requireCode(t, codes.InvalidArgument, c.CreateCache(ctx, "not a name"))
	requireCode(t, codes.InvalidArgument, c.CreateCache(ctx, ""))
	names, err := c.ListCaches(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, names)

	require.NoError(t, c.DeleteCache(ctx, "a"))
	requireCode(t, codes.NotFound, c.DeleteCache(ctx, "a"))
	names, err = c.ListCaches(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, names)
	require.Equal(t, []string{"b"}, h.engine.ListCaches())
}

// Any other token lists the caches it names and may create or delete none.
func TestControlScopedToken(t *testing.T) {
	h := startServer(t, harnessConfig{})
	for _, name := range []string{"chat", "news", "other"} {
		h.cache(name)
	}
	ctx := context.Background()
	c := h.client(h.token("ada",
		grant(access.SubscribeOnly, "news", access.AllTopics()),
		grant(access.PublishSubscribe, "chat", access.TopicPrefix("room/")),
		grant(access.PublishOnly, "gone", access.AllTopics()),
	))
	names, err := c.ListCaches(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"chat", "news"}, names)
	requireCode(t, codes.PermissionDenied, c.CreateCache(ctx, "mine"))
	requireCode(t, codes.PermissionDenied, c.DeleteCache(ctx, "chat"))
	require.Equal(t, []string{"chat", "news", "other"}, h.engine.ListCaches(), "nothing changed")

	// Every cache, but not every topic: still not an administrator.
	partial := h.client(h.token("bob", access.Permission{Role: access.PublishSubscribe, Cache: access.AllCaches(), Topic: access.TopicPrefix("x")}))
	names, err = partial.ListCaches(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"chat", "news", "other"}, names)
	requireCode(t, codes.PermissionDenied, partial.CreateCache(ctx, "mine"))

	requireCode(t, codes.Unauthenticated, h.client("").CreateCache(ctx, "mine"))
	_, err = h.client("not a token").ListCaches(ctx)
	requireCode(t, codes.Unauthenticated, err)
}
