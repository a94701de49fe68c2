// Package momentoserver serves Momento's public topics protocol from a
// topics engine, so that the real Momento SDKs publish and subscribe through
// it: a stand-in for Momento Topics in development and CI, backed by
// github.com/ringbus/topics. Command momento-local (cmd/momento-local) runs
// one.
//
//	engine := topics.New()
//	defer engine.Close()
//	auth, err := access.New(engine, access.WithKeys(key))
//	srv, err := momentoserver.New(engine, momentoserver.WithAuthority(auth))
//	ln, err := net.Listen("tcp", "127.0.0.1:8080")
//	go srv.Serve(ln)
//	...
//	srv.Shutdown(ctx) // streams end with UNAVAILABLE; the SDKs reconnect
//
// # What is served
//
// The gRPC service cache_client.pubsub.Pubsub (Publish, Subscribe) and, of
// control_client.ScsControl, CreateCache, DeleteCache and ListCaches. Every
// other call, the cache data plane (get, set, ...) included, gets
// UNIMPLEMENTED. Connections are plaintext HTTP/2; put a TLS-terminating
// proxy in front for anything but a local address.
//
// Serve runs a grpc.Server of its own. To add the services to a grpc.Server
// of yours, make it with the options of ServerOptions (the message codec,
// and a keepalive policy that lets the SDKs ping idle connections) and call
// Register; call Shutdown before its GracefulStop.
//
// # Authentication
//
// A server takes one of two options. With WithAuthority, every call must
// carry in its authorization header a token minted by that
// access.Authority, and is served through the access.Session the token
// opens: a publish or subscribe outside the token's permissions is
// PERMISSION_DENIED, a missing, forged or expired token UNAUTHENTICATED,
// and a subscription ends with UNAUTHENTICATED when its token expires. What
// a token publishes carries its ID as publisher_id. The SDKs take such a
// token in their disposable-token form: see SDKToken.
//
// The control calls: CreateCache and DeleteCache need an administrator's
// token, one that grants access.PublishSubscribe on access.AllCaches() and
// access.AllTopics() (the broadest grant a token can carry); any other
// token gets PERMISSION_DENIED. ListCaches takes any valid token and lists
// the caches the token grants something on: all of them for a permission on
// access.AllCaches(), else those it names.
//
// With LocalMode, every call is accepted, whatever its authorization header
// holds (the SDKs' local credential providers send an empty one), with
// every right, and items carry no publisher_id.
//
// # The protocol, mapped onto the engine
//
// A cache is an engine cache (named in the request body, not in a header).
// An item's topic_sequence_number is topics.Item.Sequence, its
// sequence_page topics.Item.Page (pages fit in 53 bits, as JavaScript
// clients need), its publisher_id topics.Item.Publisher, and a text value
// stays text, a binary one binary (topics.Value.IsText).
//
// Every subscription stream starts with a heartbeat, and a stream that has
// sent nothing else for the heartbeat interval (WithHeartbeat) gets
// another. An item that follows lost items (topics.Item.Missed > 0) comes
// after a discontinuity: last_topic_sequence is the last item before the
// gap, new_topic_sequence the item after which the stream goes on, so the
// items lost are new - last, and the next item is new + 1. An item of a new
// page, for a client that resumed on an old one, also comes after a
// discontinuity, from the last item the client had of the old page.
//
// Subscribe's resume_at_topic_sequence_number, with sequence_page, is
// topics.ResumeAt: the first item wanted (0: start after the newest item,
// like a new subscription; a page of 0: the topic's current page). The
// Momento Go SDK sends instead the last item it received when it
// reconnects, and would get it twice: a call from a gRPC-Go client that
// names its cache in a "cache" header, as that SDK's calls do, resumes one
// item later. A stream ends a little before its call's deadline, with
// DEADLINE_EXCEEDED, because gRPC-Go resets a stream at its deadline, which
// the Node.js SDK reads as a cancellation it does not recover from; the
// SDKs resubscribe after DEADLINE_EXCEEDED, resuming where they were.
//
// # Errors
//
// Errors have the gRPC codes the SDKs map to their own errors: NOT_FOUND
// for a cache that does not exist (a subscription to a cache that is
// deleted ends with it, and the SDKs do not retry it), ALREADY_EXISTS from
// CreateCache, INVALID_ARGUMENT for an invalid cache or topic name,
// PERMISSION_DENIED, UNAUTHENTICATED, RESOURCE_EXHAUSTED for a limit of the
// cache (topics.LimitError, topics.ErrValueTooLarge) with an "err" trailer
// the SDKs read to say which (topic_subscriptions_limit_exceeded,
// operations_rate_limit_exceeded for the publish rate,
// request_size_limit_exceeded), and UNAVAILABLE when the server shuts down
// or the engine closes, which the SDKs retry.
//
// A Server is safe for concurrent use. It does not own the engine, which
// the caller closes after Shutdown.
package momentoserver
