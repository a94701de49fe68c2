//go:build !stress

package topics_test

import "time"

// The sizes of the stress scenarios in an ordinary run (and in CI, under
// -race): small enough for a few seconds each, large enough to lap small
// rings many times. `go test -tags stress` runs the full sizes instead
// (stress_sizes_full_test.go).
var sizes = stressSizes{
	noLossPublishers:  8,
	noLossEach:        1500,
	noLossSubscribers: 16,
	lappingPublishers: 4,
	lappingEach:       3000,
	memoryItems:       20_000,
	lifecycleSeeds:    200,
	lifecycleOps:      100,
	deadline:          20 * time.Second,
}
