package momentoserver_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/ringbus/topics/access"
	"github.com/ringbus/topics/momentoserver"
	"github.com/ringbus/topics/momentoserver/internal/wire"
	"github.com/stretchr/testify/require"
)

// The SDK form is what the SDKs parse a disposable token as: standard
// base64 of a JSON object with the token as api_key, and an endpoint.
func TestSDKToken(t *testing.T) {
	raw, err := base64.StdEncoding.DecodeString(momentoserver.SDKToken("tok-en_1", "127.0.0.1:8080"))
	require.NoError(t, err)
	var got map[string]string
	require.NoError(t, json.Unmarshal(raw, &got))
	require.Equal(t, map[string]string{"api_key": "tok-en_1", "endpoint": "127.0.0.1:8080"}, got)
}

// A client may send a token in the SDKs' disposable-token form as it is.
func TestSDKTokenFormAccepted(t *testing.T) {
	h := startServer(t, harnessConfig{})
	h.cache("c")
	tok := h.token("ada", grant(access.PublishSubscribe, "c", access.AllTopics()))
	c := h.client(momentoserver.SDKToken(tok, "127.0.0.1:8080"))
	r := subscribe(t, c, &wire.SubscriptionRequest{CacheName: "c", Topic: "t"})
	require.NoError(t, c.Publish(context.Background(), "c", "t", text("x")))
	require.Equal(t, "ada", r.item().PublisherID)
}
