package wire

import (
	"context"

	"github.com/ringbus/topics"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// A Client calls a Momento topics server over a connection, as the SDKs do
// on the wire, for tests and benchmarks. It adds the authorization header
// (the token) to every call, and nothing else unless told (Header).
type Client struct {
	cc     grpc.ClientConnInterface
	token  string
	header []string // extra metadata pairs
}

// NewClient returns a client that calls over cc with the given token.
func NewClient(cc grpc.ClientConnInterface, token string) *Client {
	return &Client{cc: cc, token: token}
}

// WithHeader returns a copy of c that also sends the metadata pairs kv.
func (c *Client) WithHeader(kv ...string) *Client {
	d := *c
	d.header = append(append([]string(nil), c.header...), kv...)
	return &d
}

// WithToken returns a copy of c that sends token instead.
func (c *Client) WithToken(token string) *Client {
	d := *c
	d.token = token
	return &d
}

func (c *Client) ctx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, append([]string{"authorization", c.token}, c.header...)...)
}

var codec = grpc.ForceCodecV2(Codec{})

// Publish publishes v to the topic of the cache.
func (c *Client) Publish(ctx context.Context, cache, topic string, v topics.Value, opts ...grpc.CallOption) error {
	req := PublishRequest{CacheName: cache, Topic: topic, Value: v, HasValue: true}
	return c.cc.Invoke(c.ctx(ctx), PublishMethod, &req, &Empty{}, append(opts, codec)...)
}

// CreateCache creates a cache.
func (c *Client) CreateCache(ctx context.Context, cache string) error {
	return c.cc.Invoke(c.ctx(ctx), CreateCacheMethod, &CacheRequest{CacheName: cache}, &Empty{}, codec)
}

// DeleteCache deletes a cache.
func (c *Client) DeleteCache(ctx context.Context, cache string) error {
	return c.cc.Invoke(c.ctx(ctx), DeleteCacheMethod, &CacheRequest{CacheName: cache}, &Empty{}, codec)
}

// ListCaches returns the names of the caches listed.
func (c *Client) ListCaches(ctx context.Context) ([]string, error) {
	var resp ListCachesResponse
	if err := c.cc.Invoke(c.ctx(ctx), ListCachesMethod, &ListCachesRequest{}, &resp, codec); err != nil {
		return nil, err
	}
	names := make([]string, len(resp.Cache))
	for i, ci := range resp.Cache {
		names[i] = ci.CacheName
	}
	return names, nil
}

var subscribeDesc = grpc.StreamDesc{StreamName: "Subscribe", ServerStreams: true}

// A Stream is the client's end of one Subscribe call.
type Stream struct {
	cs grpc.ClientStream
}

// Subscribe starts a subscription. Cancel ctx to end it.
func (c *Client) Subscribe(ctx context.Context, req *SubscriptionRequest) (*Stream, error) {
	cs, err := c.cc.NewStream(c.ctx(ctx), &subscribeDesc, SubscribeMethod, codec)
	if err != nil {
		return nil, err
	}
	if err := cs.SendMsg(req); err != nil {
		return nil, err
	}
	if err := cs.CloseSend(); err != nil {
		return nil, err
	}
	return &Stream{cs: cs}, nil
}

// Recv reads the next message of the stream into m.
func (s *Stream) Recv(m *SubscriptionItem) error { return s.cs.RecvMsg(m) }

// Trailer returns the trailer of a stream that has ended (Recv returned an
// error).
func (s *Stream) Trailer() metadata.MD { return s.cs.Trailer() }
