// Package enclave defines how a Coterie node keeps its secrets in a trusted
// execution environment: the Sealer, Attester and Verifier interfaces, the
// attestation Policy and the Identity it admits, and the public framing of
// sealed blobs and evidence that all backends share.
//
// A node seals exactly two things with its enclave: its identity key and its
// copy of the cluster keyring (package enclave/keyring). Every other secret
// is encrypted under the keyring. The node's sealed records live in one
// bbolt file per data directory (package enclave/store).
//
// # Backends
//
//   - enclave/sim is the default build and needs no cgo. It is for
//     development only and protects nothing: its sealing root sits in the
//     data directory and its "attestation" is an Ed25519 statement by a key
//     in a file. It warns on every start, and refuses to start in production
//     mode.
//   - enclave/sgx (build tag ego) runs on Intel SGX through EGo. It proves it
//     runs inside a real enclave before it seals anything, because EGo
//     outside SGX "seals" with an all-zero key.
//   - the nitro backend (build tag nitro) runs in an AWS Nitro enclave:
//     attestation from the NSM (enclave/nitro/nsm) and sealing under a data
//     key that AWS KMS releases only against the enclave's attestation
//     document (enclave/nitro/kmsseal).
//   - enclave/backend picks one by Kind, so that a binary built without the
//     ego or nitro tag never links EGo or the AWS SDK.
//
// # Key policy
//
// Each Sealer has one KeyPolicy, fixed at construction. KeyPolicyCode binds
// sealed data to this exact code, so an upgraded node must fetch the keyring
// again from a peer. KeyPolicyProduct binds it to the signer and product, so
// data survives upgrades signed by the same key. Unseal accepts blobs of
// either policy that this build satisfies, which lets a node migrate between
// policies by unsealing and sealing again.
//
// # How other platforms fit
//
// Every build verifies the evidence of AWS Nitro Enclaves (package nitro)
// and Google Confidential Space (package gcpcs) in pure Go, and
// enclave/backend hands each backend those verifiers beside its own
// (Verifiers, WithVerifier), so that a member of any kind can admit a
// Nitro or Confidential Space joiner. A Nitro identity is PCR0 as the
// measurement, PCR8 as the signer and PCR1 to PCR4 as further PCRs; a
// Confidential Space identity is the container image digest. SGX quotes
// are verified only by SGX members, whose EGo reaches the DCAP quote
// provider.
//
// Neither platform has a sealing instruction. The Nitro Sealer, on first
// start, asks KMS for a data key (GenerateDataKey with the enclave's NSM
// attestation document as the Recipient), keeps the KMS-encrypted data key
// in the data directory, and on every start has KMS decrypt it, again
// against an attestation document. The KMS key policy's conditions on PCR0
// or PCR8 are the KeyPolicy (code or product). The plaintext data key stays
// in enclave memory and seals through AES-256-GCM and the SealedHeader.
// No backend runs on Confidential Space yet; it would be the same shape:
// Cloud KMS releases a data key to a workload identity pool only when the
// token's claims (the image digest) satisfy the pool's conditions.
//
// # Errors
//
// Sealing and verification failures are sentinel errors (ErrTampered,
// ErrWrongAssociatedData, ErrForeignEnclave, ErrNotAllowed, ...) wrapped
// with non-secret detail; match them with errors.Is. No error message, log
// line or panic carries a secret.
package enclave
