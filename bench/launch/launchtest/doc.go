// Package launchtest is for tests only: it builds the coterie binary for
// the tests that launch real processes (bench/launch, bench/harness).
package launchtest
