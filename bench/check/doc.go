// Package check is the invariant checker of `coterie bench` and `coterie
// drill`, usable on its own: it judges a run from records gathered outside
// the nodes, after the run, and never trusts the nodes' own verdicts.
//
// Duties. Check takes Records (the workspace's requests with their
// signatures, the cloud co-signers' presignature ledger, each node's view of
// its FSM and its committed raft log, and the callback handler's decisions
// when one was configured) and
// reports every violation of the safety invariants of DESIGN.md, each with
// its request id:
//
//   - I1: a presignature is used at most once: reserved for one request in
//     every node's FSM, named by one request wherever nodes and the ledger
//     mention it, consumed once in the ledger, behind one signature;
//   - I2: one owner per request at a time (two nodes naming different owners
//     for the same claim attempt; a node's FSM listing a request otherwise
//     than the raft log replays to), and one signature per digest;
//   - I3: every request reached a terminal outcome (signed, approved,
//     rejected, or failed with a reason), none lost;
//   - I5: every signed or approved request had an APPROVE from the callback
//     handler, when one was configured;
//   - I6: every signature's presignature was reserved for its request by a
//     committed reserve (or an add with reserve_for) of the request's owner
//     at the time, as the raft log replays;
//   - raft-log: the nodes' raft logs agree at every index they both hold,
//     raft's own safety checked from outside;
//   - signature: every signature verifies under the key derived for its
//     digest's path, checked here again with the workspace's verifier.
//
// The log checks replay the committed log with the FSM's ownership rules,
// implemented again here: a claim holds only while the request is
// unclaimed; a release of a node returns its claimed requests to unclaimed
// and burns their reservations; a reserve or complete holds only from the
// current owner, and a reserve only of an available presignature (without
// an id, the key's oldest available one, in the order they were added);
// completed is final.
//
// Loaders read Records from the real sources: the workspace's admin API
// (FromWorkspace), each node's admin API (FromNode, FromNodeLog) and the
// reference callback server's log (ReadCallbackLog).
//
// Limits. A node's FSM retains only the most recent completed requests and
// spent presignatures (cluster.completedRetained, spentRetained), so the
// FSM checks see that window; the ledger and the workspace's requests are
// complete. The raft log is read as far back as the nodes still hold it:
// once raft has compacted its start into a snapshot, a request's history
// may begin before what the checker sees, so I6 and the replayed owners
// are judged only from a log that starts at index 1 (Report.LogNotJudged
// counts the signed requests left unjudged); the logs' agreement is judged
// on whatever they hold. The replay does not model the FSM's retention
// limits (a completed request forgotten and claimed again) nor the
// origin-number check of presignature adds, which refuses only replays
// whose ids the replay already refuses. A node's FSM view and its log are
// read one after the other, so a command that commits in between shows as
// a disagreement: read them after the run has settled.
//
// Check is pure and safe for concurrent use; it does not modify Records.
package check
