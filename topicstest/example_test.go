package topicstest_test

import (
	"context"
	"fmt"
	"runtime"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/topicstest"
)

// OrderPlaced is the event the code under test publishes.
type OrderPlaced struct {
	ID       int
	Customer string
}

// placeOrders is the code under test: it publishes one event per customer.
func placeOrders(ctx context.Context, c *topics.Cache, customers ...string) error {
	orders, err := topics.TopicOf[OrderPlaced](c, "orders")
	if err != nil {
		return err
	}
	for i, who := range customers {
		if err := orders.Publish(ctx, OrderPlaced{ID: i + 1, Customer: who}); err != nil {
			return err
		}
	}
	return nil
}

// printT stands in for the *testing.T that a test would pass, so that this
// example can run on its own: it prints what the test would report.
type printT struct{ cleanups []func() }

func (p *printT) Helper()          {}
func (p *printT) Name() string     { return "TestPlaceOrders" }
func (p *printT) Cleanup(f func()) { p.cleanups = append(p.cleanups, f) }
func (p *printT) Errorf(format string, args ...any) {
	fmt.Printf("error: "+format+"\n", args...)
}
func (p *printT) Fatalf(format string, args ...any) {
	fmt.Printf("fatal: "+format+"\n", args...)
	runtime.Goexit()
}

// end runs the cleanups, as the testing package does when a test ends.
func (p *printT) end() {
	for i := len(p.cleanups) - 1; i >= 0; i-- {
		p.cleanups[i]()
	}
}

// The body of a test of placeOrders. In a real test, t is the *testing.T.
func Example() {
	t := &printT{}
	defer t.end()

	cache := topicstest.NewCache(t) // closed when the test ends
	orders, _ := topics.TopicOf[OrderPlaced](cache, "orders")
	rec := topicstest.NewRecorder(t, orders) // records every item from now on

	if err := placeOrders(context.Background(), cache, "ada", "bob", "cy"); err != nil {
		t.Fatalf("placeOrders: %v", err)
	}

	for _, item := range rec.WaitFor(3) { // or fail after rec.Timeout
		fmt.Printf("#%d %+v\n", item.Sequence, item.Value)
	}
	rec.AssertNoLoss()
	rec.AssertSequential()
	fmt.Println("cache:", cache.Name())
	// Output:
	// #1 {ID:1 Customer:ada}
	// #2 {ID:2 Customer:bob}
	// #3 {ID:3 Customer:cy}
	// cache: TestPlaceOrders
}
