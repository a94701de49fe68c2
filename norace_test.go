//go:build !race

package topics_test

const raceEnabled = false
