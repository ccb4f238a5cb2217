// Package cosigner runs the workspace's cloud co-signers: the platform's own
// MPC parties, one or two of them, which take part in every key of every API
// user together with the user's co-signer node.
//
// # Duties
//
//   - Each cloud co-signer keeps its own secrets: a simulated enclave
//     (enclave/sim) in its own directory seals its own keyring
//     (enclave/keyring), and the keyring encrypts its key shares and
//     presignature shares, each bound to its record, in the workspace store.
//   - Run carries out one relay session with the node's party: key
//     generation at pairing, presigning (started by the node's presignature
//     pool), the online signing round, and key refresh.
//   - Signing is bound to the queue: a SIGN session names a request and a
//     digest index, never a message. The cloud co-signers sign only that
//     digest, only at that digest's derivation path, only while the request
//     is open and the digest unsigned, and only for the user that owns the
//     request. A node alone cannot get an arbitrary message signed.
//   - Invariant I1 from the platform's side: before any envelope of a SIGN
//     session goes out, store.StartSign marks its presignature used and
//     drops the encrypted shares in the same committed (fsync'd)
//     transaction that checks the request. A second online round with the
//     same presignature ID is refused, across restarts, whether or not the
//     first one finished. While that commit runs, the cloud co-signers
//     build their sessions from the record as it was read before it; only
//     after the commit are the sessions' messages routed.
//   - The cloud co-signers combine the signature in the online round; Run
//     checks it against the key derived for the digest's path (package
//     verify) and records it with that key and its recovery ID, so the
//     request is signed by the time the node receives the result. A
//     combined signature that does not verify is not recorded.
//
// # Speed
//
// Decoding a key share costs milliseconds (the library checks the Paillier
// primes), so decoded shares stay in a bounded in-memory cache, keyed by
// user and party and valid only for the ciphertext they were decrypted
// from: key generation and refresh re-seal the shares, and also drop the
// user's entries. Derived public keys, which are public, are cached too.
// Each SIGN session still checks the combined signature against the key
// derived for the digest's path before recording it.
//
// # Routing
//
// Run routes envelopes among the parties of one session: an envelope from a
// cloud co-signer goes to the other cloud co-signer directly and to the
// node through the relay; an envelope from the node goes to the cloud
// co-signer it names, or to all of them when it is a broadcast. Envelopes
// from the node must name the node as their sender. Each cloud party runs on
// its own goroutine, because a session's Accept does seconds of CPU work.
//
// A Cosigners is safe for concurrent use; every session runs independently.
package cosigner
