// Package actors runs a Coterie node's work on protoactor-go actors: it
// learns of requests, claims them through raft, asks the customer's
// callback handler, signs transactions and approves config changes with the
// workspace's cloud co-signers, and keeps presignatures ready.
//
// # Duties
//
//   - Poller(U), one per API user: consumes the workspace's poll stream
//     from a cursor (reconnecting with backoff) and proposes Claim{R} for
//     every open request while the node has session capacity. The first
//     Claim that commits wins (I2); the losers drop R. A Release makes the
//     Pollers claim R again.
//   - Session(R), one per request this node owns, started when its Claim
//     commits (from the Claim's result and from the cluster's event stream;
//     starting is idempotent) and on every start for the requests the FSM
//     says this node owns. It asks Callback(U); on APPROVE it Reserves a
//     presignature per digest through raft and runs the online round, or
//     signs the approval digest with the approval key; it reports every
//     terminal outcome to the workspace and records it with Complete (I3).
//   - Callback(U), one per API user: asks the handler, one attempt at a
//     time off the mailbox, retrying RETRY and transient failures with
//     backoff on the injected clock within the user's budget. A timeout or
//     an error is never an approval (I5).
//   - PresignPool(key), one per MPC key: keeps a forecast depth of
//     available presignatures. Only the raft leader refills.
//
// # Invariants
//
//   - I1: a Session signs only with a presignature whose Reserve for its
//     request committed, opened from the FSM into a one-use store that the
//     engine empties. A restarted Session reserves a fresh presignature;
//     those its predecessor reserved are never used again (Complete marks
//     them used, a Release burns them).
//   - I5: only a final APPROVE from the handler (or a Client without a
//     handler, which approves by itself) lets a Session sign or approve.
//   - I6: the online round starts only after its Reserve committed, so a
//     node cut off from the quorum starts no new signature.
//
// # Actors and supervision
//
// The tree is coordinator → {sessions → Session(R)…, Poller(U)…,
// Callback(U)…, PresignPool(key)…}. Receive never blocks: workspace calls,
// proposals and callback attempts run on goroutines, MPC work on bounded
// worker pools (the PresignPools' refills: Config.PresignWorkers; the
// Sessions' on-the-spot presigns: Config.SlowPathWorkers; online rounds:
// Config.OnlineWorkers), and each reports back with a message. Timers run
// on the injected Clock.
//
// Supervision is explicit (strategy): a crashed child restarts after a
// backoff that doubles per failure; a child that failed more than
// MaxRestarts times within Window is stopped (a Session: its request then
// fails with a reason) or, for the coordinator's services, escalated; a
// panic with *InvariantError is always escalated. An escalation reaches the
// coordinator's own supervisor (protoactor's root strategy), which restarts
// the whole tree: every Session then resumes from the FSM.
//
// A restarted Session resumes from the recorded state: it waits for its
// predecessor's goroutines, reads R from the FSM and the workspace, and
// goes on from there (a digest the workspace recorded is not signed again;
// a request the workspace finished is only Completed). Config.FaultHook
// lets tests crash a Session at each Stage.
//
// # The slow path
//
// When a key's pool is empty a Session does not wait for the PresignPool:
// it presigns one presignature itself (on a slow-path slot, never behind a
// refill job; through raft like any other), reserves it and signs. While
// it waits for a slot, a presignature that enters the pool (a refill's)
// is its to take, so a signature never waits while the pool holds one; a
// presignature a Session made on the spot is left to it by the node's
// other Sessions. The workspace's relay has no
// full-signing session kind, so this stands in for CMP's full Sign; it
// costs the same offline work.
//
// # For the node
//
// node builds a Config (the cluster, the keyring, an mpc.Engine, the clock,
// a logger, NewMetrics with its Prometheus registerer), calls New and
// Start, then AddUser for each paired API user, and Stop on shutdown.
// Status feeds /v1/status, and Metrics.StageSnapshots (an HDR histogram
// of each signing stage) /v1/stages.
package actors
