package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ringbus/topics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The demo's orders, without the pause between them: each settles, and the
// analytics handler is restarted past the one it crashes on.
func TestRun(t *testing.T) {
	cache, err := topics.NewCache("shop")
	require.NoError(t, err)
	orders := []OrderPlaced{
		{1, "ada", 1999}, {2, "bob", 72000}, {3, "cy", 450},
		{4, "", 1200}, {5, "dee", 8800}, {6, "eve", 99999}, {7, "fay", 2500},
	}
	var out strings.Builder
	require.NoError(t, run(&out, cache, orders, 0))
	got := out.String()
	for _, want := range []string{
		"notifier:  order 1 is on its way (courier)",
		"notifier:  order 2 was declined: over the credit limit",
		"notifier:  order 4 is on its way (post)",
		"notifier:  order 7 is on its way (courier)",
		"analytics: crashed on order event #4 (runtime error: index out of range [0] with length 0); restarting after it",
		"analytics counted $1857.48 of orders from 6 initials",
		"bus: 19 events published on 4 topics, 26 deliveries, 0 missed",
	} {
		assert.Contains(t, got, want)
	}
}

// The handlers are lossless: a burst of orders many times the ring size
// settles in full, where ordinary subscribers would lose most of it.
func TestRunBurstLosesNothing(t *testing.T) {
	const n = 500
	cache, err := topics.NewCache("shop", topics.WithRingSize(2))
	require.NoError(t, err)
	orders := make([]OrderPlaced, n)
	for i := range orders {
		orders[i] = OrderPlaced{ID: i + 1, Customer: fmt.Sprint("c", i), Amount: 1000 + 100*i}
	}
	var out strings.Builder
	require.NoError(t, run(&out, cache, orders, 0))
	got := out.String()
	assert.Equal(t, n, strings.Count(got, "notifier: "), "every order settles")
	declined := strings.Count(got, "was declined")
	assert.Equal(t, n-(creditLimit-1000)/100-1, declined)
	assert.Contains(t, got, fmt.Sprintf("bus: %d events published on 4 topics, %d deliveries, 0 missed", 2*n+(n-declined), 3*n+(n-declined)))
}
