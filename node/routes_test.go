package node

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/internal/bridge"
)

// TestWorkspaceRoutes: an address with a route is dialed at the route's
// address; any other as it is.
func TestWorkspaceRoutes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := WorkspaceConfig{Routes: map[string]string{"ws.invalid:7400": l.Addr().String()}}
	egress := bridge.Net{Egress: &bridge.Addr{Kind: bridge.Unix, Path: "/nonexistent"}}
	if len(c.dialer(bridge.Net{})) != 1 || len(WorkspaceConfig{}.dialer(bridge.Net{})) != 0 || len(WorkspaceConfig{}.dialer(egress)) != 1 {
		t.Fatal("a dial option only when there are routes or an egress proxy")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, addr := range []string{"ws.invalid:7400", l.Addr().String()} {
		conn, err := c.dial(ctx, bridge.Net{}, addr)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		conn.Close()
	}
	if conn, err := c.dial(ctx, bridge.Net{}, "127.0.0.1:1"); err == nil {
		conn.Close()
		t.Fatal("an address without a route was not dialed as it is")
	}
}
