//go:build race

package node

// raceEnabled reports whether the race detector is on: it slows the MPC
// arithmetic of key generation and presigning about fortyfold.
const raceEnabled = true
