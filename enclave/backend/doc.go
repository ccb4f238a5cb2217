// Package backend opens the enclave backend a node is configured for. It is
// the one place that knows which backends this binary contains: sim always,
// sgx only in a build with the ego tag, nitro only in a build with the
// nitro tag, confidential-space only in a build with the gcpcs tag, so
// that a default build never links EGo, needs cgo, imports the AWS SDK or
// carries sealing code it cannot run. Every build verifies Nitro and
// Confidential Space evidence.
package backend
