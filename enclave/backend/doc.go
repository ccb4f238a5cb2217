// Package backend opens the enclave backend a node is configured for. It is
// the one place that knows which backends this binary contains: sim always,
// sgx only in a build with the ego tag, nitro only in a build with the
// nitro tag, so that a default build never links EGo, needs cgo or
// imports the AWS SDK. Confidential Space is verified by every build but
// no build runs on it yet.
package backend
