package topics_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ringbus/topics"
)

// exampleKey stands for a secret key of at least 32 random bytes, made with
// crypto/rand and kept out of the source.
var exampleKey = []byte("an example key: use 32 random bytes")

// A server mints a token for a client, and serves the client through the
// Session the token opens.
func ExampleEngine_Session() {
	ctx := context.Background()
	engine := topics.New(topics.WithTokenKeys(exampleKey))
	defer engine.Close()
	if _, err := engine.CreateCache("chat"); err != nil {
		panic(err)
	}

	// The token endpoint: the server decides who the client is and what it
	// may do, for how long.
	token, err := engine.MintToken(topics.Token{
		ID:      "ada",
		Expires: time.Now().Add(15 * time.Minute),
		Permissions: []topics.Permission{
			{Role: topics.PublishSubscribe, Cache: topics.CacheName("chat"), Topic: topics.TopicPrefix("room/")},
		},
	})
	if err != nil {
		panic(err)
	}

	// A later request carries the token.
	session, err := engine.Session(token)
	if err != nil {
		panic(err) // ErrTokenInvalid or ErrTokenExpired: answer 401
	}
	sub, err := session.Subscribe(ctx, "chat", "room/lobby")
	if err != nil {
		panic(err)
	}
	defer sub.Close()
	if err := session.PublishString(ctx, "chat", "room/lobby", "hello"); err != nil {
		panic(err)
	}
	item, err := sub.Next(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(item.Publisher, "says", item.Value)

	err = session.PublishString(ctx, "chat", "admin", "let me in")
	fmt.Println(errors.Is(err, topics.ErrPermissionDenied))
	// Output:
	// ada says hello
	// true
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
