// Command chatreplicas runs the chat of examples/chat as one of several
// replicas that share their rooms through NATS JetStream: a message posted
// to any replica reaches the browsers of every replica, and a browser that
// reconnects to another replica (behind a load balancer, say) resumes where
// it was, with the same token.
//
//	nats-server -js -p 4222 &                       # or a cluster
//	key=$(openssl rand -hex 32)
//	go run ./examples/chatreplicas -key $key -addr 127.0.0.1:8081 &
//	go run ./examples/chatreplicas -key $key -addr 127.0.0.1:8082 &
//
// Open both addresses, join the same room, and talk across them.
//
// Flags: those of examples/chat, and
//
//	-nats      NATS server URLs, comma-separated (default nats://127.0.0.1:4222)
//	-key       the key that signs tokens, in hex (at least 32 bytes): the same on every replica
//
// See README.md in this directory.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/access"
	"github.com/ringbus/topics/examples/chat/chatserver"
	"github.com/ringbus/topics/natsbridge"
)

func main() {
	cfg := chatserver.DefaultConfig()
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	urls := flag.String("nats", nats.DefaultURL, "NATS server URLs, comma-separated")
	key := flag.String("key", "", "the key that signs tokens, in hex, at least 32 bytes: the same on every replica")
	cfg.Flags(flag.CommandLine)
	flag.Parse()
	cfg.Logf = log.Printf

	k, err := hex.DecodeString(*key)
	if err != nil || len(k) < access.MinKeyLen {
		log.Fatalf("-key: replicas share the key that signs tokens: give %d bytes or more, in hex (openssl rand -hex %d)", access.MinKeyLen, access.MinKeyLen)
	}
	cfg.Keys = [][]byte{k}
	nc, err := nats.Connect(*urls, nats.Name("chatreplicas "+*addr), nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, nc, *addr, cfg); err != nil {
		log.Fatal(err)
	}
}

// run serves one replica on addr until ctx is done.
func run(ctx context.Context, nc *nats.Conn, addr string, cfg chatserver.Config) error {
	r, h, err := newReplica(nc, cfg)
	if err != nil {
		return err
	}
	defer r.close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("chat replica: open %s (Ctrl-C stops)\n", chatserver.PageURL(ln.Addr()))
	return chatserver.Serve(ctx, r.srv, h, ln)
}

// A replica is the chat's server on a bridge: its rooms are shared with
// every replica whose bridge reaches the same JetStream.
type replica struct {
	bridge  *natsbridge.Bridge
	srv     *chatserver.Server
	handler http.Handler // for tests
}

// newReplica returns a replica over nc and its HTTP handler. Each room's
// stream keeps cfg.History messages, as each room's ring does, so that a
// browser resuming on any replica finds what it could find on its own.
func newReplica(nc *nats.Conn, cfg chatserver.Config) (*replica, http.Handler, error) {
	if len(cfg.Keys) == 0 {
		return nil, nil, errors.New("replicas need the same Config.Keys, or their tokens work on one only")
	}
	b, err := natsbridge.New(nc, natsbridge.WithWindow(cfg.History))
	if err != nil {
		return nil, nil, err
	}
	cfg.CacheOptions = append(cfg.CacheOptions, topics.WithSequencer(b.Sequencer()))
	srv, h, err := chatserver.New(cfg)
	if err != nil {
		b.Close()
		return nil, nil, err
	}
	return &replica{bridge: b, srv: srv}, h, nil
}

// close closes the server (ending its streams), then the bridge.
func (r *replica) close() {
	r.srv.Close()
	r.bridge.Close()
}
