package client

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/coterie-mpc/coterie/clock"
)

// TestDialHandsTheAddressToTheDialer: a dialer option sees the workspace's
// address as given, host name included, not an address gRPC resolved
// first; a node's workspace.routes depend on it.
func TestDialHandsTheAddressToTheDialer(t *testing.T) {
	seen := make(chan string, 1)
	record := func(_ context.Context, addr string) (net.Conn, error) {
		select {
		case seen <- addr:
		default:
		}
		return nil, errors.New("no network in this test")
	}
	conn, err := dial("ws.invalid:7400", [32]byte{}, nil, clock.Real(), []grpc.DialOption{grpc.WithContextDialer(record)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Connect()
	select {
	case got := <-seen:
		if got != "ws.invalid:7400" {
			t.Fatalf("the dialer got %q, want the address as given", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the dialer was never called: the name went to a resolver first")
	}
}
