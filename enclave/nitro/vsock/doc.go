// Package vsock dials and listens on AF_VSOCK stream sockets, the only
// channel between a Nitro enclave and its parent instance. The enclave has
// no network interface: it reaches AWS KMS by dialling the parent (CID 3)
// on the port of a proxy that forwards to the KMS endpoint, and runs TLS
// to KMS over that connection, so the parent relays only ciphertext; its
// peers reach it on ports it listens on, which the parent forwards to
// (see internal/bridge).
//
// The standard library's net.FileConn and net.FileListener do not know
// AF_VSOCK, so Dial and Listen return a small net.Conn and net.Listener
// over the socket's *os.File, which the runtime poller serves (deadlines
// work, and Close interrupts Accept). Connect itself blocks, bounded by the
// kernel's vsock connect timeout (two seconds by default).
package vsock
