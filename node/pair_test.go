package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/token"
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

// TestPairRefusesTokens covers the tokens a node refuses before it
// contacts anyone: garbled, expired (on the node's clock) and for another
// role than the operator asked for.
func TestPairRefusesTokens(t *testing.T) {
	clk := clock.NewFake(time.Now())
	cfg := testConfig(t, t.TempDir())
	cfg.Clock = clk
	n := startNode(t, cfg)
	mk := func(role protocol.WsRole, expires time.Time) string {
		s, err := token.Encode(&protocol.WsPairingToken{
			Address: "127.0.0.1:1", CaPin: make([]byte, 32), WorkspaceId: "w", UserId: "u-1", Role: role,
			Secret: make([]byte, token.SecretLen), ExpiresAt: expires.UnixNano(),
		}, []byte("mac key of nobody"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := mk(protocol.WsRole_WS_ROLE_SIGNER, clk.Now().Add(time.Hour))
	clk.Advance(2 * time.Hour)
	tests := []struct {
		name string
		req  PairRequest
		want error
	}{
		{"garbled", PairRequest{Token: "coterie-pair-v1.????"}, token.ErrMalformed},
		{"empty", PairRequest{}, ErrBadToken},
		{"expired", PairRequest{Token: valid}, token.ErrExpired},
		{"another role", PairRequest{Token: mk(protocol.WsRole_WS_ROLE_APPROVER, clk.Now().Add(time.Hour)), Role: "signer"}, ErrRoleMismatch},
		{"unknown role asked", PairRequest{Token: mk(protocol.WsRole_WS_ROLE_SIGNER, clk.Now().Add(time.Hour)), Role: "owner"}, ErrRoleMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := n.Pair(context.Background(), tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if len(n.Users()) != 0 {
				t.Fatal("a refused token paired a user")
			}
		})
	}
}
