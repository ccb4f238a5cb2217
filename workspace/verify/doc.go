// Package verify is the workspace's judge: it checks transaction signatures
// against the public key derived for each digest's path, and config-change
// approvals against the API user's approval key. Completion uses it before
// recording anything, and `coterie workspace verify` uses it to re-check
// everything stored.
//
// Signatures are checked with decred's secp256k1 (through mpc.Signature),
// not with the MPC library that made them. The functions are pure and safe
// for concurrent use.
package verify
