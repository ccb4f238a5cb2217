//go:build !race

package actors_test

// raceEnabled reports whether the race detector is on: it slows the MPC
// arithmetic of presigning about fortyfold.
const raceEnabled = false
