// Package kmsseal is the Sealer of a Coterie node inside an AWS Nitro
// enclave (build tag nitro; the default build has only its file format and
// errors, and imports no AWS SDK).
//
// # Duties
//
// A Nitro enclave has no sealing instruction, so the node seals under a
// data key that AWS KMS releases only to an enclave whose attestation
// document satisfies the KMS key policy (conditions on
// kms:RecipientAttestation:PCR0 for KeyPolicyCode, or PCR8 for
// KeyPolicyProduct):
//
//   - on the node's first start, Open calls GenerateDataKey (AES_256) and
//     keeps the returned CiphertextBlob, KMS's encryption of the data key,
//     in the data key file;
//   - on every later start, Open calls Decrypt on that blob.
//
// Each call carries a Recipient: a fresh attestation document from the
// NSM whose public_key is a fresh RSA-2048 key, and RSAES_OAEP_SHA_256.
// KMS then answers with CiphertextForRecipient, a CMS envelope to that key
// (package cms), and no Plaintext; the enclave opens it and forgets the
// RSA key. The plaintext data key exists only in enclave memory.
//
// # Invariants
//
//   - No plaintext data key on disk or the network: the data key file
//     holds KMS's ciphertext and a one-way check value only. An answer
//     that carries Plaintext is refused (ErrPlaintextExposed).
//   - Each RSA key opens one answer and is dropped, so an altered
//     envelope gets one try against a key that is gone (CBC padding
//     oracles need many).
//   - The data key is checked against the check value written at first
//     start, so an envelope altered in a way CBC cannot notice is refused
//     (ErrWrongDataKey) instead of sealing under a wrong key.
//   - Sealed blobs use the header of package enclave, bound to PCR0
//     (code) or PCR8 (product) of the enclave's own attestation document
//     and to the data key (the "machine"), under AES-256-GCM.
//
// The KMS connection must be TLS terminated inside the enclave: the
// parent instance relays bytes through a vsock proxy and must see only
// ciphertext. NewClient dials through Dial (a vsock dialer in the nitro
// backend) while TLS verifies the KMS host name.
//
// # Concurrency and failure
//
// Open does I/O (KMS, the file); the Sealer it returns does none, and its
// methods are safe for concurrent use. KMS refusals come back as
// ErrKeyRefused with KMS's error code; envelope refusals as package cms's
// errors. No error carries key material.
package kmsseal
