// Package kmsseal is the Sealer of a Coterie node running as a Google
// Cloud Confidential Space workload. It calls STS and Cloud KMS's REST
// APIs with net/http and encoding/json alone, so it needs no Google SDK
// and no build tag; the backend links it only in a build with the gcpcs
// tag.
//
// # Duties
//
// Confidential Space has no sealing instruction, so the node seals under a
// data key that Cloud KMS releases only to a workload whose attestation
// token satisfies a workload identity pool provider's attribute condition
// (the image digest, swname CONFIDENTIAL_SPACE):
//
//   - at each start, Open gets an attestation token from the launcher
//     (Config.Tokens) with the provider as audience, and exchanges it at
//     STS for a federated access token;
//   - on the node's first start, Open makes a random 32-byte data key,
//     has Cloud KMS encrypt it, decrypts it once to prove the workload
//     will get it back, and keeps the ciphertext in the data key file;
//   - on every later start, Open has Cloud KMS decrypt that ciphertext.
//
// # Invariants
//
//   - No plaintext data key on disk: the data key file holds Cloud KMS's
//     ciphertext, the key name and a one-way check value only.
//   - The data key is checked against the check value written at first
//     start, so a wrong answer is refused (ErrWrongDataKey) instead of
//     sealing under a wrong key; CRC32C catches corrupted answers
//     (ErrBadResponse).
//   - Tokens go only to the https endpoints configured; no error or log
//     line carries a token or key material.
//   - Sealed blobs use the header of package enclave, bound to the image
//     digest (code) or to the Cloud KMS key and provider (product) and to
//     the data key (the "machine"), under AES-256-GCM (package dataseal).
//     Which images get the key is the attribute condition's decision.
//
// # Concurrency and failure
//
// Open does I/O (the launcher, STS, Cloud KMS, the file); the Sealer it
// returns does none, and its methods are safe for concurrent use. A
// refusal by STS or Cloud KMS is ErrKeyRefused with the service's error
// code and message; a 5xx or network failure is a plain error that a
// later start may not meet.
package kmsseal
