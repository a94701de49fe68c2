package momentoserver

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/access"
	"github.com/ringbus/topics/momentoserver/internal/wire"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
)

// A Server serves Momento's topics protocol from an engine: the Pubsub
// service's Publish and Subscribe, and the control service's CreateCache,
// DeleteCache and ListCaches. Create one with New; the zero Server is not
// usable. It is safe for concurrent use.
//
// The server does not own the engine: close the engine after Shutdown.
type Server struct {
	engine    *topics.Engine
	authority *access.Authority // nil in local mode
	heartbeat time.Duration

	// down is done once Shutdown was called, with ErrShutdown as its cause:
	// every subscription stream ends then.
	down     context.Context
	shutdown context.CancelCauseFunc

	mu sync.Mutex
	gs *grpc.Server // the server Serve runs, made on first use
}

// New returns a server for the engine e. It needs a way to authenticate
// calls, WithAuthority or LocalMode, and returns an error wrapping
// ErrInvalidOption without one or for an invalid option.
func New(e *topics.Engine, opts ...Option) (*Server, error) {
	if e == nil {
		return nil, ErrInvalidOption
	}
	cfg, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	down, shutdown := context.WithCancelCause(context.Background())
	return &Server{
		engine:    e,
		authority: cfg.authority,
		heartbeat: cfg.heartbeat,
		down:      down,
		shutdown:  shutdown,
	}, nil
}

// ServerOptions returns the options a grpc.Server needs to serve the
// Momento SDKs with Register:
//
//   - the codec of this package's messages, which hands every other message
//     to gRPC's protobuf codec, so that other services of the same server
//     work as before;
//   - a keepalive enforcement policy that lets clients ping every second,
//     with or without calls in flight: the SDKs ping idle connections every
//     few seconds, and gRPC's default policy (once in five minutes) answers
//     that with GOAWAY;
//   - keepalive pings from the server after a minute of silence, so that
//     the streams of a client that vanished end.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(wire.Codec{}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
	}
}

// Register registers the services on r, a grpc.Server made with the
// options of ServerOptions (and any others). Call Shutdown before the
// grpc.Server's GracefulStop: subscription streams do not end by
// themselves, and GracefulStop waits for them.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	r.RegisterService(&pubsubDesc, s)
	r.RegisterService(&controlDesc, s)
}

// Serve accepts connections on l and serves them until Shutdown, on a
// grpc.Server of its own made with ServerOptions. It may be called for
// several listeners, from several goroutines. Like http.Server's, it
// returns ErrServerClosed once Shutdown was called (before Serve or during
// it), and the listener's error if accepting fails.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.down.Err() != nil {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.gs == nil {
		s.gs = grpc.NewServer(ServerOptions()...)
		s.Register(s.gs)
	}
	gs := s.gs
	s.mu.Unlock()
	err := gs.Serve(l)
	if s.down.Err() != nil {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops the server: subscription streams end at once with
// UNAVAILABLE (the SDKs reconnect, to whatever serves the address next),
// the server accepts no more calls, and Shutdown waits for the calls in
// flight to finish and for Serve to return. If ctx ends first, it closes
// every connection and returns ctx.Err(). It is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown(ErrShutdown)
	gs := s.gs
	s.mu.Unlock()
	if gs == nil {
		return nil
	}
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		gs.Stop()
		<-stopped
		return ctx.Err()
	}
}

// callerOfCall returns the caller of the call whose context is ctx, from
// its authorization header.
func (s *Server) callerOfCall(ctx context.Context) (caller, error) {
	var token string
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		token = v[0]
	}
	return s.callerOf(token)
}

// The services, described by hand (see package wire for why there is no
// generated code).

type pubsubHandler interface {
	publish(ctx context.Context, req *wire.PublishRequest) (wire.Message, error)
	subscribe(req *wire.SubscriptionRequest, stream grpc.ServerStream) error
}

type controlHandler interface {
	createCache(ctx context.Context, req *wire.CacheRequest) (wire.Message, error)
	deleteCache(ctx context.Context, req *wire.CacheRequest) (wire.Message, error)
	listCaches(ctx context.Context, req *wire.ListCachesRequest) (wire.Message, error)
}

var pubsubDesc = grpc.ServiceDesc{
	ServiceName: wire.PubsubService,
	HandlerType: (*pubsubHandler)(nil),
	Methods:     []grpc.MethodDesc{unary(wire.PublishMethod, (*Server).publish)},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Subscribe",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			var req wire.SubscriptionRequest
			if err := stream.RecvMsg(&req); err != nil {
				return err
			}
			return srv.(*Server).subscribe(&req, stream)
		},
	}},
	Metadata: "cachepubsub.proto",
}

var controlDesc = grpc.ServiceDesc{
	ServiceName: wire.ControlService,
	HandlerType: (*controlHandler)(nil),
	Methods: []grpc.MethodDesc{
		unary(wire.CreateCacheMethod, (*Server).createCache),
		unary(wire.DeleteCacheMethod, (*Server).deleteCache),
		unary(wire.ListCachesMethod, (*Server).listCaches),
	},
	Metadata: "controlclient.proto",
}

// unary describes the unary method of full name method, served by h.
func unary[R any, P interface {
	*R
	wire.Message
}](method string, h func(*Server, context.Context, P) (wire.Message, error)) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: method[strings.LastIndexByte(method, '/')+1:],
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			req := P(new(R))
			if err := dec(req); err != nil {
				return nil, err
			}
			s := srv.(*Server)
			if interceptor == nil {
				return h(s, ctx, req)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: method}
			return interceptor(ctx, req, info, func(ctx context.Context, req any) (any, error) {
				return h(s, ctx, req.(P))
			})
		},
	}
}
