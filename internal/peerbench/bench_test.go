package peerbench

import (
	"testing"

	"github.com/ringbus/topics/internal/benchkit"
)

// TestPeers checks that every system of the comparison delivers every item
// of a steady stream to several subscribers, and closes cleanly.
func TestPeers(t *testing.T) {
	for _, p := range Peers() {
		t.Run(p.Name, func(t *testing.T) { benchkit.Check(t, p.Spec, 3) })
	}
}

// TestLosslessPeers checks that every system of the lossless comparison
// delivers every item to several subscribers, none missed or dropped, with
// each ring size the benchmark uses.
func TestLosslessPeers(t *testing.T) {
	for _, ring := range benchkit.LosslessRings {
		for _, p := range LosslessPeers(ring) {
			t.Run(benchkit.Name("ring", ring)+"/"+p.Name, func(t *testing.T) { benchkit.Check(t, p.Spec, 3) })
		}
	}
}

// The benchmarks are named Benchmark<Scenario>/<case>/<system>, like the
// library's, which cmd/perftable relies on. A system that cannot run a
// scenario (a stalled subscriber would block its publisher; no goroutine to
// wake) is left out of it, and the table says why.

func BenchmarkPublish(b *testing.B) {
	for _, sc := range benchkit.PublishCases {
		b.Run(sc.Name, func(b *testing.B) {
			for _, p := range Peers() {
				if sc.Stalled > 0 && p.NoStall != "" {
					continue
				}
				b.Run(p.Name, func(b *testing.B) { benchkit.Publish(b, p.Spec, sc.Draining, sc.Stalled) })
			}
		})
	}
}

func BenchmarkFanout(b *testing.B) {
	for _, n := range benchkit.FanoutSubs {
		b.Run(benchkit.Name("subs", n), func(b *testing.B) {
			for _, p := range Peers() {
				b.Run(p.Name, func(b *testing.B) { benchkit.Fanout(b, p.Spec, n) })
			}
		})
	}
}

func BenchmarkWakeup(b *testing.B) {
	for _, p := range Peers() {
		if p.Inline {
			continue
		}
		b.Run(p.Name, func(b *testing.B) { benchkit.Wakeup(b, p.Spec) })
	}
}

// BenchmarkLosslessFanout is BenchmarkFanout over the systems that never
// drop, named ring=N/subs=M/system: with the default ring size (every
// system), and with ring=64 (benchkit.SmallRing) for those that have a ring
// or buffer to size, where the publisher waits for the slowest subscriber
// all the time. A missed item fails the benchmark.
func BenchmarkLosslessFanout(b *testing.B) {
	for _, ring := range benchkit.LosslessRings {
		b.Run(benchkit.Name("ring", ring), func(b *testing.B) {
			for _, n := range benchkit.LosslessSubs {
				b.Run(benchkit.Name("subs", n), func(b *testing.B) {
					for _, p := range LosslessPeers(ring) {
						b.Run(p.Name, func(b *testing.B) { benchkit.Fanout(b, p.Spec, n) })
					}
				})
			}
		})
	}
}
