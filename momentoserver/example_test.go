package momentoserver_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/access"
	"github.com/ringbus/topics/momentoserver"
	"google.golang.org/grpc"
)

// A server that demands tokens, and a token for a client of the Node.js
// SDK.
func Example() {
	engine := topics.New()
	defer engine.Close()
	if _, err := engine.CreateCache("chat"); err != nil {
		log.Fatal(err)
	}
	key := []byte("an example key: use 32 random bytes") // crypto/rand, kept secret
	auth, err := access.New(engine, access.WithKeys(key))
	if err != nil {
		log.Fatal(err)
	}
	srv, err := momentoserver.New(engine, momentoserver.WithAuthority(auth))
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	token, err := auth.Mint(access.Token{
		ID:          "ada",
		Expires:     time.Now().Add(15 * time.Minute),
		Permissions: []access.Permission{{Role: access.PublishSubscribe, Cache: access.CacheName("chat"), Topic: access.TopicPrefix("room/")}},
	})
	if err != nil {
		log.Fatal(err)
	}
	// The client passes this to CredentialProvider.fromDisposableToken,
	// with endpoint overrides naming ln.Addr() (see README.md).
	sdkToken := momentoserver.SDKToken(token, ln.Addr().String())
	fmt.Println(len(sdkToken) > 0)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-served)
	// Output:
	// true
	// momentoserver: server closed
}

// The services on a grpc.Server of one's own, beside others.
func ExampleServer_Register() {
	engine := topics.New()
	defer engine.Close()
	srv, err := momentoserver.New(engine, momentoserver.LocalMode())
	if err != nil {
		log.Fatal(err)
	}
	gs := grpc.NewServer(momentoserver.ServerOptions()...)
	srv.Register(gs)
	// ... register other services, then gs.Serve(listener) ...

	// Stopping: end the subscription streams first, or GracefulStop waits
	// for them forever.
	_ = srv.Shutdown(context.Background())
	gs.GracefulStop()
}
