// Package peerbench compares topics with other in-process pub/sub libraries
// for Go on the scenarios of the library's own benchmarks (see
// internal/benchkit): publishing with 0, 1 and 1,000 stalled subscribers;
// fan-out from one publisher to 1, 10, 100 and 1,000 subscribers that each
// drain in a goroutine of their own (ns per item actually delivered, items
// missed); and the wake-up latency of a parked subscriber. A lossless
// fan-out (1, 10 and 100 subscribers) compares topics with Lossless
// subscriptions against the systems that never drop either, because they
// block the publisher or buffer without bound (LosslessPeers).
//
// It is a module of its own, so that the peers it imports never become
// dependencies of topics. Run it from this directory:
//
//	go test -run='^$' -bench=. -benchmem ./...     # raw results
//	go run ./cmd/perftable                         # -count=5, medians as a markdown table
//
// Every system publishes the same 16-byte []byte payload (benchkit.Payload)
// to one topic and is used the way its documentation recommends. Peers
// lists them, with what each does when a subscriber does not keep up.
package peerbench
