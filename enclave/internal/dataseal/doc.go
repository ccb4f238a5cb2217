// Package dataseal is the sealing half that the cloud backends share: once
// a KMS has released a node's data key into the enclave, Sealer seals and
// unseals records under a key derived from it, with AES-256-GCM and the
// sealed-blob header of package enclave.
//
// # Invariants
//
//   - The sealing key is handed in and kept only inside the AEAD; Derive
//     is the one derivation from a data key, so that a check value and a
//     sealing key of the same data key can never be equal.
//   - The header (kind, machine, key policy binding, hash of the
//     associated data) is authenticated with the associated data, and
//     checked against the SealScope before any key is tried.
//   - A cloud backend's key policy is enforced where the data key is
//     released (the KMS key policy, or the workload identity provider's
//     attribute condition); the header records which one the blob relies
//     on, so one key opens blobs of both policies.
//
// # Concurrency
//
// A Sealer does no I/O and holds no mutable state: all its methods are
// safe for concurrent use. Returned slices belong to the caller.
package dataseal
