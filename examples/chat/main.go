// Command chat is a web chat served by a few hundred lines of standard
// library Go around the topics engine: people pick a name and a room in a
// browser and talk.
//
//	go run ./examples/chat            # then open http://127.0.0.1:8080/ in two tabs
//
// The server hands each browser a short-lived token for one room (POST
// /api/token), takes messages as HTTP POSTs carrying the token, and streams
// the room to the browser as Server-Sent Events. A browser whose connection
// drops reconnects and resumes after the last message it received, and is
// told if it missed some; when its token expires, the page fetches a new one
// and carries on by itself. A browser that stops reading is dropped; the
// room never waits for it.
//
// Flags:
//
//	-addr            address to listen on (default 127.0.0.1:8080)
//	-token-lifetime  how long a token lives (default 2m)
//	-rate, -burst    messages per second per room, and bursts (default 5, 10)
//	-max-message     longest message in bytes (default 2000)
//	-history         messages each room keeps for reconnecting browsers (default 256)
//	-write-timeout   how long a browser may take to accept an event (default 10s)
//
// See README.md in this directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	cfg := defaultConfig()
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.DurationVar(&cfg.TokenLifetime, "token-lifetime", cfg.TokenLifetime, "how long a token lives; pages renew theirs when it expires")
	flag.Float64Var(&cfg.PublishRate, "rate", cfg.PublishRate, "messages per second per room (+Inf: no limit)")
	flag.IntVar(&cfg.PublishBurst, "burst", cfg.PublishBurst, "messages a room accepts at once before -rate applies")
	flag.IntVar(&cfg.MaxMessage, "max-message", cfg.MaxMessage, "longest message, in bytes")
	flag.IntVar(&cfg.History, "history", cfg.History, "messages each room keeps for browsers that reconnect (a power of two)")
	flag.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, "how long a browser may take to accept an event before it is dropped")
	flag.Parse()
	cfg.Logf = log.Printf

	if err := listenAndServe(*addr, cfg); err != nil {
		log.Fatal(err)
	}
}

func listenAndServe(addr string, cfg config) error {
	srv, handler, err := newServer(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		srv.close()
		return err
	}
	fmt.Printf("chat: open %s in two browser tabs (Ctrl-C stops)\n", pageURL(ln.Addr()))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, srv, handler, ln)
}

// pageURL is the address to open in a browser.
func pageURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// shutdownGrace is how long a shutdown waits for requests to finish.
const shutdownGrace = 5 * time.Second

// serve serves handler on ln until ctx is done, then shuts down gracefully:
// it stops accepting connections, closes the engine (which ends every event
// stream, with a "closing" event), and waits for requests in flight. It
// closes srv and ln.
func serve(ctx context.Context, srv *server, handler http.Handler, ln net.Listener) error {
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: event streams live long. Each event gets its
		// own write deadline instead (config.WriteTimeout).
	}
	// Shutdown closes the listeners, then runs this, then waits for every
	// handler to return: event streams return once the engine is closed.
	engineClosed := make(chan struct{})
	hs.RegisterOnShutdown(func() {
		srv.close()
		close(engineClosed)
	})
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	select {
	case err := <-served: // the listener failed
		srv.close()
		return err
	case <-ctx.Done():
	}
	srv.logf("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace+srv.cfg.WriteTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		hs.Close() // the grace period is over: cut what is left
	}
	<-engineClosed
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
