// Package launch starts and drives a local Coterie cluster for the bench
// and drill tools: a workspace simulator process, N `coterie node run`
// processes and an in-process toxiproxy, all on 127.0.0.1.
//
// Duties. Start writes each node's config under Config.Dir, starts the
// workspace and the nodes (the first bootstraps, the others join with join
// tokens minted on it) and waits until every node is a voter. Pair pairs API
// users and WaitWarm waits until their presignature pools are full. Kill,
// Stop, SigStop, SigCont and Restart act on one node's process, and the
// proxies let a caller add latency, limit bandwidth or cut a link.
//
// Links. Every node advertises, as its raft address, a proxy in front of its
// raft listener, so every connection a peer opens to it (raft, forwarded
// proposals, joins) crosses that node's inbound proxy; a toxic on it acts on
// all traffic into the node. The workspace advertises, in the pairing
// tokens, one proxy in front of its gRPC listener, which every node's
// polling and relay traffic crosses. Per-link proxies (one per ordered pair
// of nodes, one per node towards the workspace) would need a node to dial
// different addresses for one peer or for the workspace, which no node
// config offers today.
//
// Bounds. Every wait is bounded by Config.StartTimeout or Config.CallTimeout
// and by the caller's context; every process and proxy listens on 127.0.0.1.
//
// Concurrency. A Cluster's methods may not be called concurrently with each
// other, except that Link's methods and the admin clients are safe to call
// from any goroutine.
package launch
