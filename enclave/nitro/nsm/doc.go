// Package nsm is a Nitro enclave's Attester (build tag nitro): it asks the
// Nitro Secure Module, /dev/nsm, through github.com/hf/nsm, for
// attestation documents.
//
//   - Evidence, for joins, puts the 64-byte report data in user_data and
//     frames the document with enclave.AppendEvidence, as package nitro's
//     verifier expects.
//   - Document, for KMS's Recipient (package kmsseal), puts the caller's
//     RSA public key in public_key and a fresh random nonce.
//
// The NSM sits behind the Device interface, so tests give a device that
// answers with documents of a test PKI; nothing here checks a document,
// because the NSM signed it and peers and KMS verify it. Self reads the
// enclave's identity (its PCRs) from a document of its own.
//
// All methods are safe for concurrent use, as the NSM session is.
package nsm
