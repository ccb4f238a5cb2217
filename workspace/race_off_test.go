//go:build !race

package workspace_test

// raceEnabled reports whether the race detector is on: it slows the MPC
// arithmetic of key generation and presigning about fortyfold.
const raceEnabled = false
