//go:build race

package topics_test

// raceEnabled: the race detector slows everything down; long loops run
// fewer rounds under it.
const raceEnabled = true
