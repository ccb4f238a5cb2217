package cluster

import (
	"context"
	"net"
)

// Network is how the TLS transport listens and dials. A node inside a
// Nitro enclave has no network interface: it listens on vsock and dials
// through a proxy on its parent instance (internal/bridge.Net). Its
// methods may be called concurrently.
type Network interface {
	// Listen listens on addr, the config's BindAddr.
	Listen(addr string) (net.Listener, error)
	// DialContext connects to addr, a peer's host:port, over network
	// "tcp". When nothing listens there, the error wraps
	// syscall.ECONNREFUSED: the transport takes that for a node that is
	// not running.
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// tcpNetwork is the Network of plain TCP.
type tcpNetwork struct{}

var _ Network = tcpNetwork{}

func (tcpNetwork) Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

func (tcpNetwork) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// orTCP returns nw, or plain TCP when nw is nil.
func orTCP(nw Network) Network {
	if nw == nil {
		return tcpNetwork{}
	}
	return nw
}
