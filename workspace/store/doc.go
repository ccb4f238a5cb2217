// Package store is the workspace's durable state in one bbolt file: the
// workspace's setup (its ID and MPC setup, written once at its first
// start), workspaces, vault accounts, API users, pairing tokens, requests
// and their state machine, idempotency keys, the cloud co-signers'
// encrypted key and presignature shares with the platform's record of used
// presignatures, and the audit log.
//
// # Durability
//
// Every change commits in a bbolt read-write transaction with fsync before
// the call that made it returns, so a kill -9 loses nothing that was
// acknowledged. Writers are grouped: one goroutine commits whatever changes
// are queued in one transaction (group commit), so concurrent callers share
// an fsync without any added delay for a lone caller. A change whose
// function fails is retried alone, so one bad submission never fails
// another. Change functions therefore read all their state from the
// transaction and may run more than once.
//
// # Requests
//
// A request moves PENDING -> DELIVERED -> CLAIMED -> SIGNED | APPROVED |
// REJECTED | FAILED | EXPIRED; DELIVERED and CLAIMED may be skipped and the
// last five states are terminal. A config change may also become IGNORED
// (the co-signer's callback handler left it to the other approvers), which
// is not terminal: the request stays open until another outcome or its
// expiry. Each request has a sequence number (seq), and its ID is the
// setup's request ID prefix and that number, so that request IDs are
// unique across workspaces (a store without a setup uses "r-").
// An index of each user's open (non-terminal) requests by seq serves the
// pollers: OpenAfter(user, cursor) returns the open requests after a cursor,
// and Changed(user) returns a channel that is closed by the next commit that
// adds a request for that user, so a poller learns of a submission within
// the commit's latency instead of a poll interval.
//
// # Invariants kept here
//
//   - A digest records at most one signature; a second completion is a
//     duplicate, answered with the recorded one and counted (I2).
//   - A presignature is taken at most once: StartSign marks it used and drops
//     its shares in the same transaction that checks the request, and the
//     used record stays forever (I1, the platform's side).
//   - A pairing token redeems at most once, and not after its expiry.
//
// The Store is safe for concurrent use. It never returns its internal
// messages: every message it returns is the caller's to keep and modify, and
// it never retains a message the caller passed in.
package store
