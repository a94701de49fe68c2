package topics_test

import (
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ringbus/topics"
)

// A standalone cache: subscribe, publish, read.
func ExampleNewCache() {
	ctx := context.Background()
	cache, err := topics.NewCache("shop")
	if err != nil {
		panic(err)
	}
	defer cache.Close()

	// Subscribe first: a subscription sees what is published after it.
	sub, err := cache.Subscribe(ctx, "prices")
	if err != nil {
		panic(err)
	}
	defer sub.Close()

	_ = cache.PublishString(ctx, "prices", "AAPL 187.10")
	_ = cache.Publish(ctx, "prices", []byte{0x01, 0x02})

	for range 2 {
		item, err := sub.Next(ctx)
		if err != nil {
			panic(err)
		}
		fmt.Printf("#%d text=%v %q\n", item.Sequence, item.Value.IsText(), item.Value.Bytes())
	}
	// Output:
	// #1 text=true "AAPL 187.10"
	// #2 text=false "\x01\x02"
}

// An engine holds named caches, for a server hosting several tenants.
func ExampleEngine() {
	// Options given to New are the defaults of every cache it creates.
	engine := topics.New(topics.WithRingSize(256))
	defer engine.Close()

	for _, name := range []string{"tenant-b", "tenant-a"} {
		if _, err := engine.CreateCache(name); err != nil {
			panic(err)
		}
	}
	_, err := engine.CreateCache("tenant-a")
	fmt.Println("create again:", errors.Is(err, topics.ErrCacheExists))
	fmt.Println("caches:", engine.ListCaches())

	b, _ := engine.Cache("tenant-b")
	fmt.Println("found:", b.Name())

	_ = engine.DeleteCache("tenant-a")
	_, err = engine.Cache("tenant-a")
	fmt.Println("after delete:", errors.Is(err, topics.ErrCacheNotFound), engine.ListCaches())
	// Output:
	// create again: true
	// caches: [tenant-a tenant-b]
	// found: tenant-b
	// after delete: true [tenant-b]
}

type OrderPlaced struct {
	ID       int
	Customer string
}

// A typed topic carries Go values as they are.
func ExampleTopicOf() {
	ctx := context.Background()
	cache, _ := topics.NewCache("shop")
	defer cache.Close()

	orders, err := topics.TopicOf[OrderPlaced](cache, "orders")
	if err != nil {
		panic(err)
	}
	sub, _ := orders.Subscribe(ctx)
	defer sub.Close()
	_ = orders.Publish(ctx, OrderPlaced{ID: 7, Customer: "ada"})

	item, _ := sub.Next(ctx)
	fmt.Printf("%s #%d: %+v\n", item.Topic, item.Sequence, item.Value)

	// The name now carries OrderPlaced values, and nothing else.
	_, err = topics.TopicOf[string](cache, "orders")
	fmt.Println(errors.Is(err, topics.ErrTopicType))
	// Output:
	// orders #1: {ID:7 Customer:ada}
	// true
}

// A subscriber that falls behind by more than the ring size skips to the
// oldest item held, and is told how many it missed.
func ExampleSubscription_Next() {
	ctx := context.Background()
	cache, _ := topics.NewCache("demo", topics.WithRingSize(4))
	defer cache.Close()
	sub, _ := cache.Subscribe(ctx, "ticks")
	defer sub.Close()

	for i := 1; i <= 6; i++ {
		_ = cache.PublishString(ctx, "ticks", fmt.Sprint("tick ", i))
	}
	for range 4 {
		item, _ := sub.Next(ctx)
		fmt.Printf("%v (missed %d)\n", item.Value, item.Missed)
	}
	// Output:
	// tick 3 (missed 2)
	// tick 4 (missed 0)
	// tick 5 (missed 0)
	// tick 6 (missed 0)
}

// NextBatch reads what is ready in one call: a reader that fell behind
// catches up in a few calls rather than one per item.
func ExampleSubscription_NextBatch() {
	ctx := context.Background()
	cache, _ := topics.NewCache("demo")
	defer cache.Close()
	sub, _ := cache.Subscribe(ctx, "orders")
	defer sub.Close()

	for i := 1; i <= 5; i++ {
		_ = cache.PublishString(ctx, "orders", fmt.Sprint("order ", i))
	}
	batch := make([]topics.Item[topics.Value], 4)
	for range 2 {
		n, err := sub.NextBatch(ctx, batch)
		if err != nil {
			panic(err)
		}
		fmt.Print(n, " items:")
		for _, item := range batch[:n] {
			fmt.Print(" ", item.Value)
		}
		fmt.Println()
	}
	// Output:
	// 4 items: order 1 order 2 order 3 order 4
	// 1 items: order 5
}

// All iterates over a subscription in a range loop; leaving the loop closes
// the subscription.
func ExampleSubscription_All() {
	ctx := context.Background()
	cache, _ := topics.NewCache("demo")
	defer cache.Close()
	sub, _ := cache.Subscribe(ctx, "news")

	for _, s := range []string{"rain", "sun", "snow", "fog"} {
		_ = cache.PublishString(ctx, "news", s)
	}
	for item, err := range sub.All(ctx) {
		if err != nil {
			fmt.Println("ended:", err)
			break
		}
		fmt.Println(item.Sequence, item.Value)
		if item.Value.String() == "snow" {
			break // closes sub
		}
	}
	_, err := sub.Next(ctx)
	fmt.Println(errors.Is(err, topics.ErrClosed))
	// Output:
	// 1 rain
	// 2 sun
	// 3 snow
	// true
}

// A client that lost its connection resumes after the last item it saw.
func ExampleResumeAt() {
	ctx := context.Background()
	cache, _ := topics.NewCache("demo")
	defer cache.Close()

	sub, _ := cache.Subscribe(ctx, "chat")
	_ = cache.PublishString(ctx, "chat", "hello")
	last, _ := sub.Next(ctx)
	_ = sub.Close() // the client goes away...

	_ = cache.PublishString(ctx, "chat", "are you there?")
	_ = cache.PublishString(ctx, "chat", "bye")

	// ...and comes back, with the page and sequence it last saw.
	sub, _ = cache.Subscribe(ctx, "chat", topics.ResumeAt(last.Page, last.Sequence+1))
	defer sub.Close()
	for range 2 {
		item, _ := sub.Next(ctx)
		fmt.Println(item.Sequence, item.Value, item.Page == last.Page)
	}
	// Output:
	// 2 are you there? true
	// 3 bye true
}

// A handler runs a function for every item, in order, on a goroutine of its
// own.
func ExampleTopic_Handle() {
	ctx := context.Background()
	cache, _ := topics.NewCache("shop")
	defer cache.Close()
	orders, _ := topics.TopicOf[OrderPlaced](cache, "orders")

	done := make(chan struct{})
	h, err := orders.Handle(ctx, func(ctx context.Context, item topics.Item[OrderPlaced]) error {
		fmt.Printf("order %d for %s\n", item.Value.ID, item.Value.Customer)
		if item.Value.ID == 2 {
			close(done)
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
	_ = orders.Publish(ctx, OrderPlaced{ID: 1, Customer: "ada"})
	_ = orders.Publish(ctx, OrderPlaced{ID: 2, Customer: "bob"})
	<-done
	// Stop waits for the function to return; it returns the handler's
	// failure, if it had one.
	fmt.Println("stop:", h.Stop())
	// Output:
	// order 1 for ada
	// order 2 for bob
	// stop: <nil>
}

// A panic in a handler ends that handler only, and is reported with the item
// it happened on.
func ExamplePanicError() {
	ctx := context.Background()
	cache, _ := topics.NewCache("jobs")
	defer cache.Close()

	h, _ := cache.Handle(ctx, "work", func(ctx context.Context, item topics.Item[topics.Value]) error {
		if item.Value.String() == "bad" {
			panic("cannot parse " + item.Value.String())
		}
		fmt.Println("handled", item.Value)
		return nil
	})
	for _, job := range []string{"good", "bad", "never seen"} {
		_ = cache.PublishString(ctx, "work", job)
	}
	err := h.Wait()
	var pe *topics.PanicError
	if errors.As(err, &pe) {
		fmt.Printf("handler stopped at item %d: %v\n", pe.Sequence, pe.Value)
	}
	// Output:
	// handled good
	// handler stopped at item 2: cannot parse bad
}

// Statistics of a cache, and of one subscription.
func ExampleCache_Stats() {
	ctx := context.Background()
	cache, _ := topics.NewCache("shop", topics.WithRingSize(4))
	defer cache.Close()
	fast, _ := cache.Subscribe(ctx, "prices")
	defer fast.Close()
	slow, _ := cache.Subscribe(ctx, "prices")
	defer slow.Close()

	for i := range 10 {
		_ = cache.PublishString(ctx, "prices", fmt.Sprint(i))
		_, _ = fast.Next(ctx)
	}
	_, _ = slow.Next(ctx) // lapped: it misses 6 items and gets the 7th

	fmt.Printf("%+v\n", cache.Stats())
	s := slow.Stats()
	fmt.Printf("slow: delivered %d, missed %d, lag %d\n", s.Delivered, s.Missed, s.Lag)
	// Output:
	// {Name:shop Topics:1 Subscribers:2 Published:10 Delivered:11 Missed:6 Unread:0 MaxLag:3 Bytes:4}
	// slow: delivered 1, missed 6, lag 3
}

// The statistics at /debug/vars, with package expvar. Package topics
// registers nothing and does not import expvar: a program that wants its
// figures there publishes a variable of its own, once, at start-up.
func Example_expvar() {
	ctx := context.Background()
	cache, _ := topics.NewCache("shop")
	defer cache.Close()

	// Computed afresh each time it is read (on every request to
	// /debug/vars).
	vars := expvar.Func(func() any {
		return map[string]any{"cache": cache.Stats(), "topics": cache.AllTopicStats()}
	})
	if expvar.Get("topics.shop") == nil { // this example may run more than once
		expvar.Publish("topics.shop", vars)
	}

	_ = cache.PublishString(ctx, "prices", "1")
	_ = cache.PublishString(ctx, "orders", "2")
	var got struct {
		Cache struct {
			Name      string
			Published uint64
		}
		Topics []struct {
			Name      string
			Published uint64
		}
	}
	_ = json.Unmarshal([]byte(vars.String()), &got)
	fmt.Printf("%+v\n", got)
	// Output:
	// {Cache:{Name:shop Published:2} Topics:[{Name:orders Published:1} {Name:prices Published:1}]}
}

// With a logger, a subscriber that falls behind is logged once per episode:
// when it starts missing items, and when it has caught up.
func ExampleWithLogger() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "page" {
				return slog.Attr{} // keep this example's output stable
			}
			return a
		},
	}))
	ctx := context.Background()
	cache, _ := topics.NewCache("prices", topics.WithRingSize(4), topics.WithLogger(logger))
	defer cache.Close()
	sub, _ := cache.Subscribe(ctx, "ticks")
	defer sub.Close()

	for i := range 10 {
		_ = cache.PublishString(ctx, "ticks", fmt.Sprint(i))
	}
	for {
		item, _ := sub.Next(ctx)
		if item.Sequence == 10 {
			break
		}
	}
	// Output:
	// level=WARN msg="topics: subscriber is missing items" cache=prices topic=ticks sequence=7 missed=6 missed_total=6
	// level=INFO msg="topics: subscriber caught up" cache=prices topic=ticks sequence=10 missed_episode=6 missed_total=6
}

// A publish over the rate limit is refused with a *LimitError that says
// when to try again.
func ExampleWithPublishRate() {
	ctx := context.Background()
	cache, err := topics.NewCache("chat", topics.WithPublishRate(1, 2)) // 1 a second, bursts of 2
	if err != nil {
		panic(err)
	}
	defer cache.Close()

	for i := range 3 {
		err := cache.PublishString(ctx, "room/lobby", fmt.Sprint("message ", i))
		var limit *topics.LimitError
		if errors.As(err, &limit) {
			fmt.Printf("refused by %s (%g/s, burst %d); retry in %v\n", limit.Limit, limit.Rate, limit.Max, limit.RetryAfter.Round(time.Second))
			continue
		}
		fmt.Println("published", i)
	}
	// Output:
	// published 0
	// published 1
	// refused by PublishRate (1/s, burst 2); retry in 1s
}
