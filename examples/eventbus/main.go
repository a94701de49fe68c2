// Command eventbus uses typed topics as the in-process event bus of a small
// shop service: orders come in, billing captures payments (or declines
// them), the warehouse ships what was paid for, a notifier tells customers,
// and an analytics handler with a bug panics on one order and is restarted
// past it by a supervisor.
//
// Every service is a topics.Handler: a function run for each event, in
// order, on a goroutine the handler owns. Billing and the warehouse publish
// follow-up events from inside their handlers. The handlers subscribe with
// topics.Lossless, as an event bus should: no service may lose an event, so
// a publisher that is a whole ring ahead of a handler waits for it instead
// of overwriting what it has not handled. No handler publishes to the topic
// it reads (the events flow one way: orders, payments, shipments), so none
// can end up waiting for itself. The program prints what
// happens, then the bus's statistics, and exits within a second.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/ringbus/topics"
)

// The events.
type (
	OrderPlaced struct {
		ID       int
		Customer string
		Amount   int // in cents
	}
	PaymentCaptured struct {
		OrderID int
		Amount  int
	}
	PaymentDeclined struct {
		OrderID int
		Reason  string
	}
	OrderShipped struct {
		OrderID int
		Carrier string
	}
)

// Bus holds a typed topic per event type.
type Bus struct {
	Orders   *topics.Topic[OrderPlaced]
	Payments *topics.Topic[PaymentCaptured]
	Declines *topics.Topic[PaymentDeclined]
	Shipped  *topics.Topic[OrderShipped]
}

func newBus(c *topics.Cache) (*Bus, error) {
	var b Bus
	var err, e error
	b.Orders, e = topics.TopicOf[OrderPlaced](c, "orders")
	err = errors.Join(err, e)
	b.Payments, e = topics.TopicOf[PaymentCaptured](c, "payments")
	err = errors.Join(err, e)
	b.Declines, e = topics.TopicOf[PaymentDeclined](c, "payments/declined")
	err = errors.Join(err, e)
	b.Shipped, e = topics.TopicOf[OrderShipped](c, "shipments")
	err = errors.Join(err, e)
	return &b, err
}

// creditLimit is what billing accepts in one order.
const creditLimit = 50000

func main() {
	// The cache logs handler panics and subscribers that fall behind.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "stack" {
				return slog.Attr{} // short lines for the demo
			}
			return a
		},
	}))
	cache, err := topics.NewCache("shop", topics.WithLogger(logger))
	if err != nil {
		log.Fatal(err)
	}
	// The shop's front end: orders arrive over a few hundred milliseconds.
	orders := []OrderPlaced{
		{1, "ada", 1999}, {2, "bob", 72000}, {3, "cy", 450},
		{4, "", 1200}, {5, "dee", 8800}, {6, "eve", 99999}, {7, "fay", 2500},
	}
	if err := run(os.Stdout, cache, orders, 40*time.Millisecond); err != nil {
		log.Fatal(err)
	}
}

// run runs the shop on cache: it starts the services, places the orders
// pace apart, waits until each has settled, prints the bus's statistics to
// out and closes the cache.
func run(out io.Writer, cache *topics.Cache, orders []OrderPlaced, pace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	defer cache.Close()
	bus, err := newBus(cache)
	if err != nil {
		return err
	}

	// say prints one line of what happens; handlers call it concurrently.
	var sayMu sync.Mutex
	say := func(who, format string, args ...any) {
		sayMu.Lock()
		defer sayMu.Unlock()
		fmt.Fprintf(out, "%-10s %s\n", who+":", fmt.Sprintf(format, args...))
	}

	var handlers []*topics.Handler
	defer func() {
		for _, h := range handlers {
			_ = h.Stop() // on an early return; Stop is idempotent
		}
	}()
	start := func(h *topics.Handler, e error) {
		err = errors.Join(err, e)
		if h != nil {
			handlers = append(handlers, h)
		}
	}

	// Billing: an order in, a payment or a decline out.
	start(bus.Orders.Handle(ctx, func(ctx context.Context, it topics.Item[OrderPlaced]) error {
		o := it.Value
		if o.Amount > creditLimit {
			say("billing", "declined order %d of %s (%s)", o.ID, o.Customer, money(o.Amount))
			return bus.Declines.Publish(ctx, PaymentDeclined{OrderID: o.ID, Reason: "over the credit limit"})
		}
		say("billing", "captured %s for order %d", money(o.Amount), o.ID)
		return bus.Payments.Publish(ctx, PaymentCaptured{OrderID: o.ID, Amount: o.Amount})
	}, topics.Lossless()))

	// Warehouse: a payment in, a shipment out.
	start(bus.Payments.Handle(ctx, func(ctx context.Context, it topics.Item[PaymentCaptured]) error {
		carrier := []string{"post", "courier"}[it.Value.OrderID%2]
		say("warehouse", "shipped order %d by %s", it.Value.OrderID, carrier)
		return bus.Shipped.Publish(ctx, OrderShipped{OrderID: it.Value.OrderID, Carrier: carrier})
	}, topics.Lossless()))

	// Notifier: tells the customer how it ended, and run when all have.
	// Room for every order: a lossless notifier blocked on this channel
	// would hold up the warehouse, billing and at last the shop.
	settled := make(chan int, len(orders))
	start(bus.Shipped.Handle(ctx, func(_ context.Context, it topics.Item[OrderShipped]) error {
		say("notifier", "order %d is on its way (%s)", it.Value.OrderID, it.Value.Carrier)
		settled <- it.Value.OrderID
		return nil
	}, topics.Lossless()))
	start(bus.Declines.Handle(ctx, func(_ context.Context, it topics.Item[PaymentDeclined]) error {
		say("notifier", "order %d was declined: %s", it.Value.OrderID, it.Value.Reason)
		settled <- it.Value.OrderID
		return nil
	}, topics.Lossless()))

	// Analytics: a second handler on the orders, with a bug, supervised.
	var revenue int                         // touched by one analytics handler at a time
	byInitial := make(map[byte]int)         // likewise
	analyzed := make(chan int, len(orders)) // tells run, as settled does
	analytics := func(_ context.Context, it topics.Item[OrderPlaced]) error {
		defer func() { analyzed <- it.Value.ID }() // crash or not
		byInitial[it.Value.Customer[0]]++          // the bug: a customer may have no name
		revenue += it.Value.Amount
		return nil
	}
	// The supervisor restarts it past an event it crashed on. The first
	// handler starts here, before any order is published, so that it sees
	// them all.
	first, e := bus.Orders.Handle(ctx, analytics, topics.Lossless())
	if err = errors.Join(err, e); err != nil {
		return err
	}
	supervised := make(chan struct{})
	defer func() {
		_ = cache.Close() // on an early return: ends the supervised handler
		<-supervised
	}()
	go func(h *topics.Handler) {
		defer close(supervised)
		for {
			var pe *topics.PanicError
			if !errors.As(h.Wait(), &pe) {
				return // the cache closed (or the context ended)
			}
			say("analytics", "crashed on order event #%d (%v); restarting after it", pe.Sequence, pe.Value)
			next, err := bus.Orders.Handle(ctx, analytics, topics.Lossless(), topics.ResumeAt(pe.Page, pe.Sequence+1))
			if err != nil {
				say("analytics", "cannot restart: %v", err)
				return
			}
			h = next
		}
	}(first)

	// The shop's front end.
	for _, o := range orders {
		say("shop", "order %d from %q for %s", o.ID, o.Customer, money(o.Amount))
		if err := bus.Orders.Publish(ctx, o); err != nil {
			return err
		}
		time.Sleep(pace)
	}
	for _, done := range []chan int{settled, analyzed} {
		for i := range orders {
			select {
			case <-done:
			case <-ctx.Done():
				return fmt.Errorf("%d of %d orders went through: %w", i, len(orders), ctx.Err())
			}
		}
	}

	// Shut down: stop every handler (each Stop waits for its goroutine)
	// and the supervised one by closing the cache.
	for _, h := range handlers {
		if err := h.Stop(); err != nil {
			return err
		}
	}
	st := cache.Stats()
	_ = cache.Close()
	<-supervised

	fmt.Fprintln(out)
	fmt.Fprintf(out, "analytics counted %s of orders from %d initials (one event lost to its bug)\n", money(revenue), len(byInitial))
	fmt.Fprintf(out, "bus: %d events published on %d topics, %d deliveries, %d missed\n",
		st.Published, st.Topics, st.Delivered, st.Missed)
	for _, ts := range cache.AllTopicStats() {
		fmt.Fprintf(out, "  %-18s published %d, delivered %d\n", ts.Name, ts.Published, ts.Delivered)
	}
	return nil
}

func money(cents int) string { return fmt.Sprintf("$%d.%02d", cents/100, cents%100) }
