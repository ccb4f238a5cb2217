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
//   - Start raft (package cluster) in the data directory, as a single
//     bootstrapping voter or with peers.
//   - Make sure the cluster-wide callback JWT key exists: the leader creates
//     an RSA key once and records it sealed under the keyring in the FSM;
//     every node signs its callbacks with it.
//   - Pair with workspace API users (Node.Pair): redeem the token, run the
//     MPC key generation through the workspace relay, create the approval
//     key, and record the user and its keys sealed through raft.
//   - Serve the paired users with the actor system (package actors), giving
//     it the concrete cluster (timed, for the raft apply latency metric),
//     keyring, workspace clients and callback clients.
//   - Serve the admin HTTP API: /v1/health, /v1/status, /metrics without
//     authentication; /v1/pair and /v1/users with the bearer token the node
//     writes (0600) to data_dir/admin.token on first start; over TLS 1.3
//     when the config names a certificate. AdminClient is its Go client,
//     used by the `coterie node` commands.
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
// New opens the store, raft and the admin API (health answers 503); Start
// waits for a leader, finds or creates the callback key, starts the actors
// and hands them every paired user, then reports ready. Close stops the
// actors, the admin API, raft and the store, in that order.
package node
