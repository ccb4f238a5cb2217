// Package node wires a Coterie node together and runs it. It is the only
// package that imports all the others.
//
// # Duties
//
//   - Read the YAML config (Config, LoadConfig): every field is documented
//     in testdata/example.yaml, unknown fields are errors, and Validate
//     reports every problem at once, the files the config names included,
//     before New creates anything.
//   - Open the node's secrets: on first start create the enclave-sealed
//     store (identity key and keyring) in the data directory; on every start
//     unseal it with the configured enclave backend. The sim backend warns in
//     the log on every start and is refused in production mode.
//   - Start raft (package cluster) in the data directory: bootstrap a new
//     cluster, or join one with a join token (Join), then catch up with
//     the leader before serving.
//   - Make sure the cluster-wide callback JWT key exists: the leader creates
//     an RSA key once and records it sealed under the keyring in the FSM;
//     every node signs its callbacks with it.
//   - Pair with workspace API users (Node.Pair): redeem the token, run the
//     MPC key generation through the workspace relay, create the approval
//     key, and record the user and its keys sealed through raft.
//   - Serve the paired users with the actor system (package actors), giving
//     it the concrete cluster (timed, for the raft apply latency metric),
//     keyring, workspace clients and callback clients.
//   - Serve the admin HTTP API: /v1/health and /metrics without
//     authentication; /v1/status, /v1/stages (an HDR histogram of each
//     signing stage, which the bench merges across nodes), /v1/pair,
//     /v1/users and the cluster operations under /v1/cluster/ (join
//     tokens, the member list, remove, leave, transfer-leader, the
//     attestation policy, and for outside checkers the listings of the
//     FSM's requests and presignatures and of the committed raft log,
//     without secrets) with the bearer token the node writes (0600) to
//     data_dir/admin.token on first start; over TLS 1.3 when the config
//     names a certificate. AdminClient is its Go client, used by the
//     `coterie node` commands and the bench. The same listener serves the
//     status console at / (package console) behind a login with that
//     token, fed by the node's ConsoleState and by a recorder of the
//     cluster's events that Start subscribes once the node serves.
//   - Report health by role (Health): the node's Phase, its membership,
//     whether a leader is known, and whether signing stopped on a broken
//     invariant, as Vault-style status codes (200 serving, 429 standby, 473
//     catching up, 501 not a member, 503 no quorum or signing stopped).
//   - Depart as planned (Drain for a restart, Leave for good): hand raft
//     leadership over, stop claiming, let the sessions in flight finish
//     within Config.ShutdownGrace, release the rest to the other nodes;
//     Leave then removes the node from raft and the member table.
//   - Log through the configured logger: each record names its component
//     (node, cluster, actors, ...), and identical records past a few per
//     window are held back and counted (internal/logthrottle), so a part
//     failing in a loop cannot flood the log.
//
// # Secrets
//
// Every secret the node creates (MPC key shares, approval keys, workspace
// client keys, the callback key) is encrypted under the keyring before it
// enters the raft log; the keyring itself is sealed by the enclave. A key
// record's ciphertext is bound to its record id. Nothing secret is logged,
// put in an error, or answered by the admin API.
//
// # Order
//
// New opens the store, raft and the admin API (phase starting: health
// answers 503 until a leader is known, then 473); Start waits for a leader
// (phase catching-up), brings the node into its cluster, finds or creates
// the callback key, starts the actors and hands them every paired user,
// then serves (200). Drain and Leave move a serving node to draining or
// leaving (429) and stop its actors; Close stops the actors, the admin
// API, raft and the store, in that order.
package node
