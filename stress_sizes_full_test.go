//go:build stress

package topics_test

import "time"

// The full sizes of the stress scenarios, for `go test -tags stress`: see
// "Stress tests and fuzzing" in CONTRIBUTING.md.
var sizes = stressSizes{
	noLossPublishers:  8,
	noLossEach:        50_000,
	noLossSubscribers: 16,
	lappingPublishers: 4,
	lappingEach:       100_000,
	memoryItems:       200_000,
	lifecycleSeeds:    500,
	lifecycleOps:      400,
	deadline:          20 * time.Minute,
}
