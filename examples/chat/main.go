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
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/ringbus/topics/examples/chat/chatserver"
)

func main() {
	cfg := chatserver.DefaultConfig()
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	cfg.Flags(flag.CommandLine)
	flag.Parse()
	cfg.Logf = log.Printf

	if err := listenAndServe(*addr, cfg); err != nil {
		log.Fatal(err)
	}
}

func listenAndServe(addr string, cfg chatserver.Config) error {
	srv, handler, err := chatserver.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		srv.Close()
		return err
	}
	fmt.Printf("chat: open %s in two browser tabs (Ctrl-C stops)\n", chatserver.PageURL(ln.Addr()))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return chatserver.Serve(ctx, srv, handler, ln)
}
