// Package snapfile is the file format of a cluster snapshot: the FSM's
// state at one applied index (the same canonical bytes a raft snapshot
// holds, so only ciphertext, by construction: every secret in the state is
// sealed under the cluster keyring), behind a header that names the
// cluster, the index and the node that saved it, a SHA-256 of the state
// and the saving node's Ed25519 signature over the header.
//
// Read checks the format, the checksum and the signature, and Summarize
// describes a state without the keyring: its members, API users, keys,
// requests and presignature pools. Neither decrypts anything, and neither
// needs a running node. A file that fails a check is refused with an error
// that names the check.
package snapfile
