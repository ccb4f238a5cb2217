package node

import (
	"context"
	"net"

	"google.golang.org/grpc"

	"github.com/coterie-mpc/coterie/internal/bridge"
)

// dialer returns the gRPC dial option that applies the routes and dials
// over nw, nil when there are no routes and nw dials directly.
func (c WorkspaceConfig) dialer(nw bridge.Net) []grpc.DialOption {
	if len(c.Routes) == 0 && nw.Egress == nil {
		return nil
	}
	return []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		return c.dial(ctx, nw, addr)
	})}
}

// dial connects to addr, or to its route when it has one, over nw.
func (c WorkspaceConfig) dial(ctx context.Context, nw bridge.Net, addr string) (net.Conn, error) {
	if to, ok := c.Routes[addr]; ok {
		addr = to
	}
	return nw.DialContext(ctx, "tcp", addr)
}
