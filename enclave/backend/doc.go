// Package backend opens the enclave backend a node is configured for. It is
// the one place that knows which backends this binary contains: sim always,
// sgx only in a build with the ego tag, so that a default build never links
// EGo or needs cgo.
package backend
