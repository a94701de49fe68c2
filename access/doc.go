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
// Tokens are meant to be short-lived (DefaultMaxLifetime is an hour, and
// WithMaxLifetime lowers or raises it). A client whose subscription ended
// with ErrTokenExpired fetches a fresh token from its server and subscribes
// again with topics.ResumeAt from the page and sequence after the last item
// it received: it loses nothing the topic still holds.
//
// # Errors and HTTP
//
// A server maps the errors of this package and of topics to statuses:
// ErrTokenInvalid and ErrTokenExpired to 401 Unauthorized (the client fetches
// a new token), ErrPermissionDenied to 403 Forbidden, topics.ErrInvalidName
// and topics.ErrValueTooLarge to 400 or 413, topics.ErrCacheNotFound to 404
// (it is checked after the permission, so a client learns nothing of caches
// it may not use), and topics.ErrLimitExceeded to 429 with the
// *topics.LimitError's RetryAfter in a Retry-After header. The chat example
// (examples/chat) does exactly this.
//
// # Keys
//
// Keys are at least MinKeyLen random bytes (crypto/rand), never passwords.
// To rotate them without logging anybody out, make a new key the newest and
// keep the old one among the older keys for the maximum token lifetime, then
// drop it: Authority.SetKeys does it on a running server, and sessions
// already opened stay valid until their tokens expire.
package access
