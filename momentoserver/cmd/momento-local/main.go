// Command momento-local serves Momento's topics protocol on one machine,
// backed by a topics engine: a stand-in for Momento Topics that the Momento
// SDKs talk to in development and CI.
//
//	go run ./cmd/momento-local -local                    # any token, every right
//	go run ./cmd/momento-local -keys "$KEYS"             # tokens minted with those keys
//	go run ./cmd/momento-local mint -keys "$KEYS" -id ada -cache chat -topic-prefix room/
//
// Serving flags:
//
//	-addr              address to listen on (default 127.0.0.1:8080, where the
//	                   SDKs' local credential providers connect)
//	-local             accept every call with every right, whatever its token
//	-keys              token keys, comma-separated base64, newest first (default
//	                   $MOMENTO_LOCAL_KEYS); each at least 32 random bytes
//	-caches            caches to create at start, comma-separated
//	-ring-size         items each topic keeps for slow and resuming subscribers
//	-heartbeat         how often an idle subscription stream gets a heartbeat
//	-shutdown-timeout  how long SIGINT or SIGTERM waits for calls in flight
//
// The mint command prints a token for the SDKs (see -h); with -raw, the
// token itself, as clients send it in the authorization header.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/access"
	"github.com/ringbus/topics/momentoserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "momento-local:", err)
		}
		os.Exit(2)
	}
}

// run runs the command with args. Serving, it calls listening (if not nil)
// with the listener's address once it accepts calls, and returns when ctx
// ends, after a graceful shutdown.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, listening func(net.Addr)) error {
	if len(args) > 0 && args[0] == "mint" {
		return mint(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("momento-local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	local := fs.Bool("local", false, "accept every call with every right, whatever its token (development only)")
	keys := fs.String("keys", os.Getenv("MOMENTO_LOCAL_KEYS"), "token keys: comma-separated base64, newest first")
	caches := fs.String("caches", "", "caches to create at start, comma-separated")
	ringSize := fs.Int("ring-size", topics.DefaultRingSize, "items each topic keeps (a power of two)")
	heartbeat := fs.Duration("heartbeat", momentoserver.DefaultHeartbeat, "how often an idle subscription stream gets a heartbeat")
	shutdownTimeout := fs.Duration("shutdown-timeout", 10*time.Second, "how long shutdown waits for calls in flight")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (serve takes flags only; mint is a command)", fs.Args())
	}

	check, err := topics.NewCache("check", topics.WithRingSize(*ringSize))
	if err != nil {
		return fmt.Errorf("-ring-size: %w", err)
	}
	check.Close()
	engine := topics.New(topics.WithRingSize(*ringSize))
	defer engine.Close()
	for _, name := range splitList(*caches) {
		if _, err := engine.CreateCache(name); err != nil {
			return fmt.Errorf("-caches: %w", err)
		}
	}
	opts := []momentoserver.Option{momentoserver.WithHeartbeat(*heartbeat)}
	switch {
	case *local && *keys != "":
		return errors.New("-local and -keys: choose one")
	case *local:
		opts = append(opts, momentoserver.LocalMode())
	case *keys != "":
		auth, err := authority(engine, *keys)
		if err != nil {
			return err
		}
		opts = append(opts, momentoserver.WithAuthority(auth))
	default:
		return errors.New("give -keys (or $MOMENTO_LOCAL_KEYS) to demand tokens, or -local to accept every call")
	}
	srv, err := momentoserver.New(engine, opts...)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	mode := "tokens from -keys"
	if *local {
		mode = "local mode: every call has every right"
	}
	fmt.Fprintf(stdout, "momento-local: serving Momento topics on %s (%s); Ctrl-C stops\n", ln.Addr(), mode)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if listening != nil {
		listening(ln.Addr())
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-served; err == nil && !errors.Is(serr, momentoserver.ErrServerClosed) {
		err = serr
	}
	fmt.Fprintln(stdout, "momento-local: stopped")
	return err
}

// authority returns an authority over engine with the keys of a -keys
// value.
func authority(engine *topics.Engine, list string) (*access.Authority, error) {
	var keys [][]byte
	for _, k := range splitList(list) {
		b, err := decodeKey(k)
		if err != nil {
			return nil, fmt.Errorf("-keys: key %d: %w", len(keys), err)
		}
		keys = append(keys, b)
	}
	if len(keys) == 0 {
		return nil, errors.New("-keys: no key")
	}
	return access.New(engine, access.WithKeys(keys[0], keys[1:]...))
}

// decodeKey decodes a key in base64, standard or URL-safe, with or without
// padding.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64")
	}
	return b, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// mint prints a token for the keys, identity and grant its flags give.
func mint(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("momento-local mint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keys := fs.String("keys", os.Getenv("MOMENTO_LOCAL_KEYS"), "token keys, as the server takes them")
	id := fs.String("id", "", "the token's ID: what subscribers see as publisher_id")
	cache := fs.String("cache", "", "the cache the token grants, or * for every cache")
	topic := fs.String("topic", "*", "the topic the token grants, or * for every topic")
	prefix := fs.String("topic-prefix", "", "grant the topics with this prefix instead of -topic")
	role := fs.String("role", "publish-subscribe", "publish, subscribe or publish-subscribe")
	ttl := fs.Duration("ttl", time.Hour, "how long the token lives")
	endpoint := fs.String("endpoint", "127.0.0.1:8080", "the endpoint written into the SDK form of the token")
	raw := fs.Bool("raw", false, "print the token itself rather than the SDKs' disposable-token form")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keys == "" || *id == "" || *cache == "" {
		return errors.New("mint needs -keys, -id and -cache")
	}
	perm := access.Permission{Cache: access.CacheName(*cache), Topic: access.TopicName(*topic)}
	if *cache == "*" {
		perm.Cache = access.AllCaches()
	}
	switch {
	case *prefix != "":
		perm.Topic = access.TopicPrefix(*prefix)
	case *topic == "*":
		perm.Topic = access.AllTopics()
	}
	switch *role {
	case "publish":
		perm.Role = access.PublishOnly
	case "subscribe":
		perm.Role = access.SubscribeOnly
	case "publish-subscribe":
		perm.Role = access.PublishSubscribe
	default:
		return fmt.Errorf("-role %q: want publish, subscribe or publish-subscribe", *role)
	}
	engine := topics.New()
	defer engine.Close()
	auth, err := authority(engine, *keys)
	if err != nil {
		return err
	}
	tok, err := auth.Mint(access.Token{ID: *id, Expires: time.Now().Add(*ttl), Permissions: []access.Permission{perm}})
	if err != nil {
		return err
	}
	if !*raw {
		tok = momentoserver.SDKToken(tok, *endpoint)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
