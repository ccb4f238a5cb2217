// Package bridge carries a node's connections across a boundary that it
// cannot cross by itself. A Nitro enclave has no network interface, only
// vsock to its parent instance; a node run in a network namespace without
// interfaces is the same case on one machine.
//
// Inside, the node listens on a vsock port (or a unix socket) instead of a
// TCP port, and Net dials every host:port through an HTTP CONNECT proxy
// outside. Outside, `coterie bridge` runs Forward for each of the node's
// listeners (a TCP port in front of the vsock port, or a vsock port in
// front of KMS), Proxy, the CONNECT proxy, which dials only the
// destinations it is told to allow (the peers, the workspace, the callback
// handler), and a FileStore for the few files the node must keep.
//
// Everything a node sends across is TLS that the node ends itself (raft's
// mutual TLS, the workspace's pinned TLS, the callback handler's https),
// so the bridge sees ciphertext and the destinations, which the parent
// instance sees anyway.
//
// Addresses name their kind: "host:port" is TCP, "vsock://CID:PORT" (or
// "vsock://:PORT" to listen from any CID) is vsock, and "unix:PATH" is a
// unix socket.
package bridge
