// Package sgx is the Intel SGX backend, on EGo (github.com/edgelesssys/ego).
// It is built only with the ego build tag, and needs cgo; a default build
// of Coterie contains none of it.
//
// Sealing uses EGo's ecrypto with 256-bit keys: the unique (MRENCLAVE) key
// under enclave.KeyPolicyCode, the product (MRSIGNER and ISVPRODID) key
// under enclave.KeyPolicyProduct. Evidence is an SGX remote report over the
// report data, and Verify checks a peer's report with EGo, then the policy.
//
// The ego trap: a binary built with the ordinary Go toolchain, or run
// outside SGX, gets an all-zero sealing key from EGo with no error, and
// EGo's simulation mode does the same. New therefore proves that it runs in
// a real enclave — enclave.GetSelfReport must succeed and the CPU's seal key
// ID must not be zero — before this package seals anything, and fails with
// ErrNotInEnclave otherwise.
package sgx
