// Package vsock dials AF_VSOCK stream sockets, the only channel between a
// Nitro enclave and its parent instance. The enclave has no network
// interface: it reaches AWS KMS by dialling the parent (CID 3) on the port
// of a vsock-proxy that forwards to the KMS endpoint, and runs TLS to KMS
// over that connection, so the parent relays only ciphertext.
//
// The standard library's net.FileConn does not know AF_VSOCK, so Dial
// returns a small net.Conn over the socket's *os.File, which the runtime
// poller serves (deadlines work). Connect itself blocks, bounded by the
// kernel's vsock connect timeout (two seconds by default).
package vsock
