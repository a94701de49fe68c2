package access_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/access"
)

// exampleKey stands for a secret key of at least 32 random bytes, made with
// crypto/rand and kept out of the source.
var exampleKey = []byte("an example key: use 32 random bytes")

// A server mints a token for a client, and serves the client through the
// Session the token opens.
func Example() {
	ctx := context.Background()
	engine := topics.New()
	defer engine.Close()
	if _, err := engine.CreateCache("chat"); err != nil {
		panic(err)
	}
	auth, err := access.New(engine, access.WithKeys(exampleKey))
	if err != nil {
		panic(err)
	}

	// The token endpoint: the server decides who the client is and what it
	// may do, for how long.
	token, err := auth.Mint(access.Token{
		ID:      "ada",
		Expires: time.Now().Add(15 * time.Minute),
		Permissions: []access.Permission{
			{Role: access.PublishSubscribe, Cache: access.CacheName("chat"), Topic: access.TopicPrefix("room/")},
		},
	})
	if err != nil {
		panic(err)
	}

	// A later request carries the token.
	session, err := auth.Session(token)
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
	fmt.Println(errors.Is(err, access.ErrPermissionDenied))
	// Output:
	// ada says hello
	// true
}
