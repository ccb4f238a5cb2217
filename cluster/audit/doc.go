// Package audit is Coterie's tamper-evident audit log: a hash chain of
// entries, one per decision the cluster records (a request claimed, the
// callback handler's answer, a presignature reserved, an outcome, a
// release, a member, policy, keyring, pairing or handler change).
//
// # Duties
//
//   - Define the entry (Entry) and its canonical encoding, from which
//     each entry's hash is computed: SHA-256 over the previous entry's
//     hash and the entry's canonical bytes.
//   - Hold the retained part of the chain in bounded memory (Chain): the
//     entries after an anchor, the sequence number and hash of the last
//     entry dropped.
//   - Verify a run of entries from an anchor and name the first broken
//     link (Verify, BrokenLinkError).
//   - Write and read exported segments (WriteSegment, ReadSegment), so
//     that entries dropped from the cluster can be kept in files and
//     verified offline, each segment linking to the next by its anchor.
//
// # Invariants
//
// Entries are numbered from 1 without gaps. An entry's hash covers every
// field but the hash itself, and the previous hash, so changing, removing,
// inserting or reordering entries breaks the chain at the first entry
// touched: Verify reports that sequence number. The chain does not defend
// against a rewriter who recomputes every hash after the change; that is
// what replication is for: package cluster builds the chain inside its raft
// FSM, so every node derives the same chain (and the same head hash) from
// the same log, and no node can rewrite it alone. A verifier compares the
// head it computes with a node's, or a segment's last entry with the next
// segment's anchor.
//
// No secret enters an entry. The package cannot enforce it; its producer
// (the FSM) records ids, names, outcomes, reasons and digests only.
//
// # Concurrency
//
// A Chain is not safe for concurrent use: its owner (the FSM) guards it.
// Verify, Hash and the segment functions are pure and safe to call from
// any goroutine.
package audit
