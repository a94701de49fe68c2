package natsbridge_test

import (
	"context"
	"fmt"
	"os"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ringbus/topics/natsbridge"
)

// Two processes share a topic: here two bridges, each with its own
// connection and engine, on one embedded JetStream server (a real
// deployment connects to a NATS cluster instead).
func Example() {
	dir, _ := os.MkdirTemp("", "natsbridge-example")
	defer os.RemoveAll(dir)
	ns, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	ns.Start()
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(waitTimeout) {
		fmt.Println("the server did not start")
		return
	}

	// A process: a connection, a bridge, an engine whose caches are shared.
	process := func() (*nats.Conn, *natsbridge.Bridge) {
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			panic(err)
		}
		b, err := natsbridge.New(nc)
		if err != nil {
			panic(err)
		}
		return nc, b
	}
	ncA, bridgeA := process()
	defer ncA.Close()
	defer bridgeA.Close()
	ncB, bridgeB := process()
	defer ncB.Close()
	defer bridgeB.Close()
	engineA, engineB := bridgeA.NewEngine(), bridgeB.NewEngine()
	defer engineA.Close()
	defer engineB.Close()

	ctx := context.Background()
	chatA, _ := engineA.CreateCache("chat")
	chatB, _ := engineB.CreateCache("chat")
	sub, err := chatB.Subscribe(ctx, "room/lobby")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close()
	if err := chatA.PublishString(ctx, "room/lobby", "hello from A"); err != nil {
		fmt.Println(err)
		return
	}
	it, err := sub.Next(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("B got %q, item %d of its page\n", it.Value, it.Sequence)
	// Output: B got "hello from A", item 1 of its page
}
