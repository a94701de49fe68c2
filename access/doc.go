// Package access lets a server offer the topics of an engine to clients it
// does not trust: browsers, mobile apps, other services. The server keeps
// the engine to itself, hands each client a short-lived token that grants
// some roles on some caches and topics, and serves each request through the
// Session that the presented token opens.
//
//	engine := topics.New()
//	auth, err := access.New(engine, access.WithKeys(key)) // key: 32+ random bytes, kept secret
//
//	// The token endpoint, after the server has decided who the client is:
//	token, err := auth.Mint(access.Token{
//		ID:      "ada",
//		Expires: time.Now().Add(15 * time.Minute),
//		Permissions: []access.Permission{
//			{Role: access.PublishSubscribe, Cache: access.CacheName("chat"), Topic: access.TopicPrefix("room/")},
//		},
//	})
//
//	// Every later request carries the token:
//	session, err := auth.Session(token)
//	err = session.PublishString(ctx, "chat", "room/lobby", "hello")
//	sub, err := session.Subscribe(ctx, "chat", "room/lobby", topics.ResumeAt(page, seq))
//
// # What a session guarantees
//
// A Session does what its token grants and nothing else: a publish or
// subscribe outside the token's permissions fails with ErrPermissionDenied,
// and everything fails with ErrTokenExpired once the token has expired. What
// a session publishes carries the token's ID in topics.Item.Publisher, which
// nobody can set without a token carrying that ID. A session's subscriptions
// end when the token expires, with an error wrapping topics.ErrClosed and
// ErrTokenExpired, and a session can never open a Lossless subscription, so
// a client can slow down no topic for anybody else. Cap how fast a topic
// accepts publishes with topics.WithPublishRate.
//
// # Tokens
//
// A token string is opaque to its holder: base64url without padding, safe as
// it is in a URL, a cookie or an HTTP header, about 90 bytes for one
// permission. It carries the holder's ID, an expiry (to the millisecond) and
// up to MaxPermissions permissions, signed with HMAC-SHA256 under the
// newest of the authority's keys. Selectors are values, not patterns:
// CacheName("chat") and TopicName("room/" + userInput) are refused at Mint
// if the input holds a character that names may not, so input from a client
// can never widen a grant into a prefix or a wildcard.
//
// # Expiry and renewal
//
// A token cannot be revoked before its expiry (short of dropping its key),
// so keep lifetimes short (WithMaxLifetime; DefaultMaxLifetime is an hour)
// and let clients renew:
//
//   - A request made with an expired token fails with ErrTokenExpired; a
//     subscription opened under a token ends at the token's expiry, with an
//     error wrapping topics.ErrClosed and ErrTokenExpired (a Next waiting
//     then returns at once).
//   - The client fetches a new token and subscribes again, sending the page
//     and sequence of the last item it received; the server subscribes with
//     topics.ResumeAt(page, sequence+1). The client gets everything published
//     meanwhile that the topic still holds, and Item.Missed says what it lost
//     if it was away too long.
//   - A browser's EventSource resends the last event ID itself
//     (Last-Event-ID) when it reconnects after a dropped connection; after an
//     expiry it must open a new EventSource with the new token and pass the
//     last ID along itself, since a new EventSource starts without one.
//
// # Errors and HTTP
//
// A server maps the errors of this package and of topics to statuses:
//
//   - ErrTokenExpired, ErrTokenInvalid: 401 Unauthorized; the client fetches
//     a new token.
//   - ErrPermissionDenied: 403 Forbidden.
//   - topics.ErrLimitExceeded: 429 Too Many Requests, with the
//     *topics.LimitError's RetryAfter in a Retry-After header.
//   - topics.ErrInvalidName, topics.ErrValueTooLarge, topics.ErrInvalidOption
//     (Lossless asked of a session): 400 Bad Request.
//   - topics.ErrCacheNotFound: 404 Not Found. It is checked after the
//     permission, so only a session allowed to use a cache learns that it
//     does not exist.
//   - topics.ErrClosed: 503 Service Unavailable while the server shuts down.
//
// Mint returns an error wrapping topics.ErrInvalidName when a selector names
// an invalid cache or topic (bad input from the client: 400), and
// ErrTokenInvalid for any other fault of the Token: a server's own mistake.
// New and SetKeys return an error wrapping topics.ErrInvalidOption for
// missing, short or repeated keys. The chat example (examples/chat) is a
// complete server built this way, with browser tests of renewal and resume.
//
// # Limits for clients
//
// A session does no more than its token grants and its cache allows:
// topics.WithPublishRate caps each topic's publishes, whoever makes them;
// topics.WithMaxSubscribers, WithMaxTopics, WithMaxValueSize and
// WithMaxBytes bound what clients can make the process hold; and a session
// never opens a Lossless subscription.
//
// # Keys
//
// Keys are at least MinKeyLen random bytes (crypto/rand), never passwords.
// To rotate them without logging anybody out, make a new key the newest and
// keep the old one among the older keys for the maximum token lifetime, then
// drop it: Authority.SetKeys does it on a running server, and sessions
// already opened stay valid until their tokens expire. Dropping every key
// but a new one revokes every token at once. Lowering the maximum lifetime
// also cuts short tokens minted under a higher one: a token whose expiry
// lies further ahead than the current maximum allows is refused as invalid.
package access
