package node

import (
	"context"
	"net"

	"google.golang.org/grpc"
)

// dialer returns the gRPC dial option that applies the routes, nil when
// there are none.
func (c WorkspaceConfig) dialer() []grpc.DialOption {
	if len(c.Routes) == 0 {
		return nil
	}
	return []grpc.DialOption{grpc.WithContextDialer(c.dial)}
}

// dial connects to addr, or to its route when it has one.
func (c WorkspaceConfig) dial(ctx context.Context, addr string) (net.Conn, error) {
	if to, ok := c.Routes[addr]; ok {
		addr = to
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}
