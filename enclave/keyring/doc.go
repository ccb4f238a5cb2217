// Package keyring holds the cluster's versioned AES-256-GCM data keys, which
// encrypt every secret the cluster keeps outside the enclaves: MPC key
// shares, presignature shares, approval keys, the callback JWT key.
//
// # Using it
//
// Other packages need two calls:
//
//	ct, err := kr.Encrypt(recordID, plaintext)
//	pt, err := kr.Decrypt(recordID, ct)
//
// The record ID is the record's stable identity in the FSM (for example
// "presig/<key-id>/<presig-id>"). It is authenticated with the ciphertext,
// so a ciphertext copied to another record fails with ErrWrongRecord, and
// a modified one with ErrTampered. The ciphertext header names the key
// version, so Decrypt works across rotations. A Keyring is safe for
// concurrent use; hand one *Keyring to every component that needs it.
//
// # Rotation
//
// Rotate adds a fresh version and makes it current, for one process. Old
// versions stay and still decrypt; CiphertextVersion tells which records a
// re-encryption pass has yet to rewrite.
//
// A cluster rotates with the same keys on every member, and never through
// the old keyring (whoever held an old version, such as a removed member,
// must not read the new one):
//
//  1. the proposer makes NewVersionKey(next version) and, for each current
//     member, VersionKey.WrapVersion to that member's Ed25519 identity key
//     (the member table's, the key of its TLS certificate), bound to the
//     cluster and the member's id; it publishes the copies and the key's
//     Check value, never the key;
//  2. each member opens its own copy with UnwrapVersion and its identity's
//     private key, which also checks the key against the Check value (so a
//     proposer cannot hand members different keys), then Keyring.Add makes
//     it current and the member seals the keyring again.
//
// The wrap is HPKE to the X25519 key birationally equivalent to the
// identity key (see rotate.go for why one key pair serves both). No
// separate wrap key is published or attested: the identity key was
// admitted by the attested join and lives sealed by the member's enclave.
//
// # At rest and between nodes
//
// A node keeps its keyring sealed by its own enclave (MarshalSealed and
// Open). A joining node gets it from a member through an attested
// transfer:
//
//  1. the joiner calls NewReceiver, which makes a fresh X25519 key and
//     evidence whose report data is TransferReportData(public key, its
//     identity key), and sends Receiver.Request to a member;
//  2. the member calls Keyring.Wrap with its Verifier, the cluster's Policy
//     and the identity key it authenticated the joiner by: it checks the
//     evidence, checks that the report data covers both keys, and encrypts
//     the keyring to the transfer key with HPKE (RFC 9180);
//  3. the joiner calls Receiver.Unwrap and seals the result with its own
//     enclave.
//
// The plaintext keyring exists only in memory, and no error or log carries
// it.
package keyring
