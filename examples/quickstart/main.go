// Command quickstart shows the topics engine doing its job in a few seconds:
// one cache, several subscribers reading one topic, a deliberately slow
// subscriber that is told exactly what it missed, and a typed topic carrying
// Go structs with no serialisation.
package main

import (
	"context"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/ringbus/topics"
)

// OrderPlaced is an event on a typed topic: subscribers receive the struct
// itself.
type OrderPlaced struct {
	ID       int
	Customer string
	Total    float64
}

func main() {
	ctx := context.Background()

	// An engine holds named caches; each topic keeps its newest 64 items.
	engine := topics.New(topics.WithRingSize(64))
	defer engine.Close()
	cache, err := engine.CreateCache("shop")
	if err != nil {
		log.Fatal(err)
	}

	fmt.Println("1. Fan-out: three readers keep up, one reads slowly.")
	const prices = 2000
	var wg sync.WaitGroup
	report := make([]string, 4)
	for i := range 4 {
		// Subscribe before publishing: a subscription sees only what is
		// published after it starts.
		sub, err := cache.Subscribe(ctx, "prices")
		if err != nil {
			log.Fatal(err)
		}
		slow := i == 3
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sub.Close()
			var received, missed uint64
			for item, err := range sub.All(ctx) {
				if err != nil {
					log.Fatal(err)
				}
				received++
				missed += item.Missed
				if slow {
					time.Sleep(time.Millisecond) // a reader that cannot keep up
				}
				if item.Sequence == prices {
					break
				}
			}
			who := fmt.Sprintf("fast reader %d", i+1)
			if slow {
				who = "slow reader  "
			}
			report[i] = fmt.Sprintf("   %s received %4d, was told it missed %4d: %4d + %4d = %d published",
				who, received, missed, received, missed, received+missed)
		}()
	}
	for n := 1; n <= prices; n++ {
		// Publish never waits for a subscriber, however slow.
		if err := cache.PublishString(ctx, "prices", fmt.Sprintf("tick %d", n)); err != nil {
			log.Fatal(err)
		}
		if n%16 == 0 {
			time.Sleep(time.Millisecond) // a steady stream rather than one burst
		}
	}
	wg.Wait()
	for _, line := range report {
		fmt.Println(line)
	}

	fmt.Println("2. A typed topic: Go values in, the same values out.")
	orders, err := topics.TopicOf[OrderPlaced](cache, "orders")
	if err != nil {
		log.Fatal(err)
	}
	sub, err := orders.Subscribe(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	for i, who := range []string{"ada", "grace", "linus"} {
		if err := orders.Publish(ctx, OrderPlaced{ID: 100 + i, Customer: who, Total: 9.5 * float64(i+1)}); err != nil {
			log.Fatal(err)
		}
	}
	for range 3 {
		item, err := sub.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		o := item.Value
		fmt.Printf("   order %d from %s for %.2f (sequence %d on topic %q)\n", o.ID, o.Customer, o.Total, item.Sequence, item.Topic)
	}

	fmt.Println("3. Resume: a reader that went away picks up where it left off.")
	last := uint64(0)
	page := uint64(0)
	{
		s, err := cache.Subscribe(ctx, "news")
		if err != nil {
			log.Fatal(err)
		}
		cache.PublishString(ctx, "news", "first")
		item, err := s.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		last, page = item.Sequence, item.Page
		fmt.Printf("   read %q (sequence %d), then disconnected\n", item.Value, item.Sequence)
		s.Close()
	}
	cache.PublishString(ctx, "news", "second")
	cache.PublishString(ctx, "news", "third")
	s, err := cache.Subscribe(ctx, "news", topics.ResumeAt(page, last+1))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for range 2 {
		item, err := s.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("   resumed: %q (sequence %d, missed %d)\n", item.Value, item.Sequence, item.Missed)
	}

	fmt.Println("4. Ends: closing the engine ends every subscription with ErrClosed.")
	done := make(chan error)
	go func() {
		_, err := s.Next(ctx)
		done <- err
	}()
	engine.Close()
	fmt.Printf("   a waiting reader got: %v\n", <-done)
}
