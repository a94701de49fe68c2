package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const sample = `goos: linux
goarch: amd64
cpu: Test CPU
BenchmarkPublish/subs=0/topics-2         	 1000	 30.0 ns/op	 30.0 ns/publish	 16 B/op	 1 allocs/op
BenchmarkPublish/subs=0/topics-2         	 1000	 50.0 ns/op	 50.0 ns/publish	 16 B/op	 1 allocs/op
BenchmarkPublish/subs=0/topics-2         	 1000	 40.0 ns/op	 40.0 ns/publish	 16 B/op	 1 allocs/op
BenchmarkPublish/subs=0/channels-2       	 1000	 20.0 ns/op	 20.0 ns/publish	 16 B/op	 1 allocs/op
BenchmarkPublish/subs=0/channels-2       	 1000	 22.0 ns/op	 22.0 ns/publish	 16 B/op	 1 allocs/op
BenchmarkFanout/subs=100/topics-2        	 5000	 4000 ns/op	 0.01 allocs/delivery	 0 missed/op	 40.0 ns/delivery	 81 B/op	 1 allocs/op
BenchmarkFanout/subs=100/channels-2      	 2000	 9000 ns/op	 0.01 allocs/delivery	 0 missed/op	 90.0 ns/delivery	 16 B/op	 1 allocs/op
BenchmarkWakeup/topics-2                 	 100	 1000 ns/op	 800 p50-ns	 1500 p99-ns
BenchmarkMemory/subscription/topics-2    	 1	 4000 ns/op	 176.0 B/subscription	 213600 B/op	 3025 allocs/op
PASS
ok  	example	1.0s
`

func TestParseMedians(t *testing.T) {
	r := parse(strings.NewReader(sample))
	require.Equal(t, []string{
		"BenchmarkPublish/subs=0/topics", "BenchmarkPublish/subs=0/channels",
		"BenchmarkFanout/subs=100/topics", "BenchmarkFanout/subs=100/channels",
		"BenchmarkWakeup/topics", "BenchmarkMemory/subscription/topics",
	}, r.order)
	v, ok := r.median("BenchmarkPublish/subs=0/topics", "ns/publish")
	require.True(t, ok)
	assert.Equal(t, 40.0, v, "median of 30, 50, 40")
	v, ok = r.median("BenchmarkPublish/subs=0/channels", "ns/publish")
	require.True(t, ok)
	assert.Equal(t, 21.0, v, "median of an even count: the mean of the middle two")
	_, ok = r.median("BenchmarkPublish/subs=1/topics", "ns/publish")
	assert.False(t, ok)
	assert.Equal(t, []string{"topics", "channels"}, r.systems())
	assert.Equal(t, "Test CPU", cpuModel([]byte(sample)))
}

func TestWriteTables(t *testing.T) {
	var b strings.Builder
	write(&b, parse(strings.NewReader(sample)), func(s string) string {
		if s == "channels" {
			return "drops"
		}
		return ""
	})
	out := b.String()
	assert.Contains(t, out, "| topics | 40.0 | 1.00 | — | — | 800 | 1,500 |")
	assert.Contains(t, out, "| channels | — | — | 90.0 | — | — | 0.01 |")
	assert.Contains(t, out, "| channels | 0.53× | — | — | 2.25× | — | — |", "ratios to topics")
	assert.Contains(t, out, "- **channels** — drops.")
	assert.NotContains(t, out, "| channels | — | — | — | — | — | — |", "no row without a figure")
	assert.Contains(t, out, "| Memory/subscription/topics | 176 B/subscription, 213,600 B/op, 3,025 allocs/op |")
}

func TestNumber(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 0.001234: "0.0012", 1.5: "1.50", 42.25: "42.2", 999.6: "1,000",
		1234567: "1,234,567", -2500: "-2,500",
	} {
		assert.Equal(t, want, number(v), "number(%v)", v)
	}
}

const losslessSample = `BenchmarkLosslessFanout/ring=1024/subs=1/topics-lossless-2    	 1000	 300 ns/op	 1.00 allocs/delivery	 0 missed/op	 300 ns/delivery
BenchmarkLosslessFanout/ring=1024/subs=1/topics-lossless-2    	 1000	 320 ns/op	 1.00 allocs/delivery	 0 missed/op	 320 ns/delivery
BenchmarkLosslessFanout/ring=1024/subs=1/topics-lossless-2    	 1000	 310 ns/op	 1.00 allocs/delivery	 0 missed/op	 310 ns/delivery
BenchmarkLosslessFanout/ring=1024/subs=1/EventBus-2           	 1000	 500 ns/op	 1.00 allocs/delivery	 0 missed/op	 500 ns/delivery
BenchmarkLosslessFanout/ring=1024/subs=100/topics-lossless-2  	 1000	 7000 ns/op	 0.01 allocs/delivery	 0 missed/op	 70.0 ns/delivery
BenchmarkLosslessFanout/ring=1024/subs=100/EventBus-2         	 1000	 30000 ns/op	 1.03 allocs/delivery	 0 missed/op	 300 ns/delivery
BenchmarkLosslessFanout/ring=64/subs=1/topics-lossless-2      	 1000	 400 ns/op	 1.00 allocs/delivery	 0 missed/op	 400 ns/delivery
BenchmarkLosslessFanout/ring=64/subs=10/topics-lossless-2     	 1000	 1100 ns/op	 0.10 allocs/delivery	 0 missed/op	 110 ns/delivery
BenchmarkLosslessFanout/ring=1024/subs=10/nats-unlimited-2    	 1000	 9000 ns/op	 3.00 allocs/delivery	 0 missed/op	 900 ns/delivery
`

func TestWriteLosslessTable(t *testing.T) {
	var b strings.Builder
	write(&b, parse(strings.NewReader(losslessSample)), func(string) string { return "" })
	out := b.String()
	assert.NotContains(t, out, "Publishing and waking up", "no empty table")
	assert.NotContains(t, out, "| benchmark | medians |", "every benchmark is tabled")
	assert.Contains(t, out, "| system | ring | 1 subscriber | 10 | 100 | allocs/delivery (100) |\n|---|---|--:|--:|--:|--:|\n"+
		"| topics-lossless | 1,024 | 310 | — | 70.0 | 0.01 |\n"+
		"| EventBus | 1,024 | 500 | — | 300 | 1.03 |\n"+
		"| nats-unlimited | 1,024 | — | 900 | — | — |\n"+
		"| topics-lossless | 64 | 400 | 110 | — | — |\n",
		"a row per ring and system, grouped by ring in order of appearance")
}
