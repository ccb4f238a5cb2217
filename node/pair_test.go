package node

import (
	"context"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/protocol"
)

// TestPairLive pairs a node with a live MPC key generation through the
// workspace relay.
func TestPairLive(t *testing.T) {
	if raceEnabled {
		t.Skip("key generation takes minutes under the race detector; the real-process tests in cmd/coterie pair live")
	}
	dir := t.TempDir()
	_, admin := testWorkspace(t, dir+"/ws")
	n := startNode(t, testConfig(t, dir))
	id, tok := createUser(t, admin, protocol.WsRole_WS_ROLE_BOTH)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	info, err := n.Pair(ctx, PairRequest{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != id || !info.Signer() || info.ApprovalPublicKey == "" {
		t.Fatalf("info %+v", info)
	}
}
