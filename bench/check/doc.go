// Package check is the invariant checker of `coterie bench` and `coterie
// drill`, usable on its own: it judges a run from records gathered outside
// the nodes, after the run, and never trusts the nodes' own verdicts.
//
// Duties. Check takes Records (the workspace's requests with their
// signatures, the cloud co-signers' presignature ledger, each node's view of
// its FSM, and the callback handler's decisions when one was configured) and
// reports every violation of the safety invariants of DESIGN.md, each with
// its request id:
//
//   - I1: a presignature is used at most once: reserved for one request in
//     every node's FSM, named by one request wherever nodes and the ledger
//     mention it, consumed once in the ledger, behind one signature;
//   - I2: one owner per request at a time (two nodes naming different owners
//     for the same claim attempt), and one signature per digest;
//   - I3: every request reached a terminal outcome (signed, approved,
//     rejected, or failed with a reason), none lost;
//   - I5: every signed or approved request had an APPROVE from the callback
//     handler, when one was configured;
//   - signature: every signature verifies under the key derived for its
//     digest's path, checked here again with the workspace's verifier.
//
// Loaders read Records from the real sources: the workspace's admin API
// (FromWorkspace), each node's admin API (FromNode) and the reference
// callback server's log (ReadCallbackLog).
//
// Limits. A node's FSM retains only the most recent completed requests and
// spent presignatures (cluster.completedRetained, spentRetained), so the
// FSM checks see that window; the ledger and the workspace's requests are
// complete. I2's "one owner at a time" is judged from the nodes' final
// views, not yet from the raft log itself.
//
// Check is pure and safe for concurrent use; it does not modify Records.
package check
