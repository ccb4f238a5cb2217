// Package mpc is Coterie's threshold-ECDSA engine: CMP (Canetti, Gennaro,
// Goldfeder, Makriyannis, Peled) on secp256k1, built on
// github.com/taurusgroup/multi-party-sig v0.7.0-alpha-2025-01-28. That
// library is unaudited alpha code, as its README says.
//
// # Duties
//
// The package runs one party's side of five sub-protocols as sessions:
//
//   - Keygen: distributed key generation; every party ends with a KeyShare.
//   - Refresh: new shares of the same key; old shares stop working with new ones.
//   - Presign: the offline phase; every signer ends with its share of a
//     Presignature, which belongs in a PresignStore.
//   - PresignOnline: the one online round that turns a presignature into a
//     signature. It takes the presignature out of the store itself, so there
//     is no way to sign with a presignature without spending it (DESIGN
//     invariant I1).
//   - Sign: full signing without a presignature, the fallback.
//
// Signing sessions sign for a BIP-32 unhardened derivation path (Path). The
// platform checks the result with DerivePublicKey, which needs only the
// master public key and chain code.
//
// # Driving a session
//
// A session is a message-driven state machine in the manner of etcd's raft
// RawNode: it reads no clock, starts no timer and does no I/O. The caller
// (the Session actor, or the workspace's cloud co-signer) creates it with an
// Engine constructor, sends what Outgoing returns, feeds what arrives to
// Accept, and stops when Done reports true:
//
//	s, err := engine.PresignOnline(ctx, params, input, store, presigID)
//	if err != nil { ... }
//	defer s.Close()
//	send(s.Outgoing())
//	for !s.Done() {
//		env := receive()             // the caller owns timeouts
//		if err := s.Accept(env); err != nil {
//			var rejected *mpc.MessageError
//			if errors.As(err, &rejected) { continue } // env dropped; session unchanged
//		}
//		send(s.Outgoing())
//	}
//	sig, err := s.Result()
//
// An envelope with an empty To is a broadcast: send it to every other party
// of the session. The constructors and Accept do the protocol's heavy
// arithmetic (up to seconds of CPU) before they return, on the calling
// goroutine alone: sessions never use the library's worker pool, which can
// hang for ever (see Engine). Call them off an actor's mailbox.
//
// # Screening incoming messages
//
// Accept checks every envelope before any byte of it reaches the library:
// the structure (ValidateEnvelope), the session ID and protocol, that the
// sender is a peer of the session and the recipient is this party, the
// library's transcript ID (SSID, which binds the parties' inputs), that the
// round and message kind exist in the protocol (a table that mirrors the
// library and is enforced on our own messages too), that the round is the
// current one or the next (nothing further ahead can come from an honest
// party, and the bound keeps the library's output channel from filling), no
// duplicates, the payload's size and that it is well-formed CBOR. Each
// failure is a *MessageError naming the claimed sender and wrapping a
// sentinel (ErrMalformed, ErrOversize, ErrWrongSession, ErrUnknownParty,
// ErrMisrouted, ErrDuplicate, ErrRoundClosed, ErrRoundNotOpen,
// ErrSessionDone); the session is unchanged. The library call itself runs
// under recover as a last line of defence.
//
// The envelope's From is only a claim. The transport must authenticate the
// peer and check that From names it before calling Accept.
//
// # Identifiable abort
//
// When a party sends a bad proof, an invalid share, a payload the protocol
// cannot decode, or an echo of the reliable broadcast that disagrees with
// ours, the session ends with an *AbortError whose Party names it. The
// session then queues an abort notice (an envelope with Abort set) so that
// the other parties stop at once; they end with a *PeerAbortError, which
// names the party that gave notice and whom it blamed, without blaming the
// sender itself.
//
// # Key shares and presignatures
//
// KeyShare and Presignature are secret key material. Their MarshalBinary
// output must only be stored encrypted (the keyring does that); it never
// appears in logs or errors. UnmarshalPresignature accepts only the
// canonical encoding and checks the presignature's algebra, so the fuzzed
// decoder cannot be fed an inconsistent one.
//
// The chain code comes from key generation: every party commits to 32
// random bytes, all commitments are exchanged before any opening, and the
// chain code is the XOR of the openings. All parties, the platform's cloud
// co-signers included, agree on it, and no party can bias it unless all
// collude. Refresh keeps it. It is public in the BIP-32 sense (with the
// public key it forms the extended public key, which links derived
// addresses), but it is not a secret the signature depends on.
//
// A presignature is made for the master key and serves a derived key
// x' = x + δ when it is used: with R = k⁻¹·G, r its x-coordinate and
// additive shares kᵢ of k and χᵢ of χ = k·x, the derived signature share
// kᵢ·m + r·(χᵢ + δ·kᵢ) equals the master presignature's share for the
// message m' = m + r·δ, which every signer can compute (δ is public). So
// the online round runs on the master key's config and presignature with m',
// the library's check of the result is the derived key's verification
// equation, a bad share is traced with the presignature's own commitments,
// and every signer also verifies the final signature of the caller's digest
// under the derived public key with decred's secp256k1.
//
// Groth and Shoup (ePrint 2021/1330) show that presignatures combined with
// additive key derivation allow a cube-root (about 2^85 on secp256k1)
// forgery attack by whoever chooses messages and derivation paths after
// seeing R. PresignOnline applies their mitigation, re-randomized
// presignatures: before the online round every signer computes the public
// factor ρ, a hash of the presignature (its ID and R), the master key and
// chain code, the path and the digest, and signs with the nonce R' = ρ·R,
// dividing its shares kᵢ and χᵢ by ρ (see rerandomize). The nonce a
// signature carries is then fixed only once the message and the path are,
// so no one can line it up with them in advance. It costs each signer one
// scalar multiplication, which the multiplicative form needs (R = k⁻¹·G
// takes no additive change that keeps kᵢ linear): about 0.17 ms on the
// machine this was measured on, half again the online round's own time,
// and about 1% of a signature's time end to end (BenchmarkRerandomization).
//
// Presignatures also record their key share's epoch (a fresh joint random
// value at every keygen and refresh), so a refresh retires every
// presignature made before it.
package mpc

//go:generate go run ./internal/fixturegen -dir testdata
