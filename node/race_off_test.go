//go:build !race

package node

// raceEnabled reports whether the race detector is on.
const raceEnabled = false
