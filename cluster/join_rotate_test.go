package cluster_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/enclavetest"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/protocol"
)

// beforeCommit is an Attester that runs hook when the member makes its
// evidence for the commit round of a join (its second evidence): after it
// wrapped the keyring to the joiner, before it admits it.
type beforeCommit struct {
	enclave.Attester
	calls atomic.Int32
	hook  func()
}

func (a *beforeCommit) Evidence(ctx context.Context, reportData []byte) ([]byte, error) {
	if a.calls.Add(1) == 2 && a.hook != nil {
		a.hook()
	}
	return a.Attester.Evidence(ctx, reportData)
}

// TestJoinDuringRotation: a joiner never receives a keyring without a
// version the cluster rotated in before it was admitted, since that
// rotation was wrapped to the member table without it. A rotation that
// commits while the member serves the join (after it wrapped the keyring,
// before it admits the joiner) is in the keyring the joiner gets; a member
// that has not taken the latest version in refuses the join, clearly and
// before anything is recorded.
func TestJoinDuringRotation(t *testing.T) {
	tests := []struct {
		name string
		// unopenable rotates with a copy for the member that does not
		// open (a proposer that wrapped garbage): it never takes the
		// version in.
		unopenable bool
		// rotateMidJoin rotates between the wrap and the admission;
		// otherwise the rotation comes before the join.
		rotateMidJoin bool
	}{
		{name: "rotation while the join is served", rotateMidJoin: true},
		{name: "member lacks the latest version", unopenable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			m := enclavetest.NewMachine(t)
			kr, err := keyring.Generate()
			if err != nil {
				t.Fatal(err)
			}
			a := newJoinNode(t, m, "n1", nil)
			att := &beforeCommit{Attester: a.enc}
			a.cfg.Bootstrap, a.cfg.Keyring, a.cfg.Attester = true, kr, att
			a.cfg.SaveKeyring = func(*keyring.Keyring) error { return nil }
			policy := selfPolicy(a.enc)
			ca := startTLS(t, a.cfg)
			if err := ca.Init(ctx, policy, a.member()); err != nil {
				t.Fatal(err)
			}
			ticket, err := ca.IssueJoinToken(ctx, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			var rotated atomic.Uint32
			rotate := func() {
				if tt.unopenable {
					bad := &protocol.ClusterKeyringRotated{Version: 2, Check: make([]byte, 32), Copies: []*protocol.ClusterWrappedKey{
						{MemberId: "n1", IdentityKey: a.key.Public().(ed25519.PublicKey), Wrapped: make([]byte, 80)},
					}}
					if _, err := ca.Propose(ctx, &protocol.ClusterCommand{Body: &protocol.ClusterCommand_KeyringRotated{KeyringRotated: bad}}); err != nil {
						t.Error(err)
						return
					}
					rotated.Store(2)
					return
				}
				rot, err := ca.RotateKeyring(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				rotated.Store(rot.Version)
			}
			if tt.rotateMidJoin {
				att.hook = rotate
			} else {
				rotate()
			}

			b := newJoinNode(t, m, "n2", nil)
			res, err := cluster.Join(ctx, b.params(ticket.String(), policy))
			if rotated.Load() != 2 {
				t.Fatalf("rotated to version %d, want 2", rotated.Load())
			}
			if tt.unopenable {
				if !errors.Is(err, cluster.ErrJoinRefused) || !strings.Contains(err.Error(), "lacks version 2 of the cluster's 2") {
					t.Fatalf("join through a member without version 2: %v", err)
				}
				if _, ok := ca.FSM().MemberByID("n2"); ok {
					t.Fatal("a refused join recorded the joiner")
				}
				if tok, ok := ca.FSM().JoinToken(ticket.TokenID, time.Now()); !ok || tok.UsedBy != nil {
					t.Fatalf("a refused join spent the token: %+v", tok)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !res.Keyring.Holds(2) || res.Keyring.Version() != 2 {
				t.Fatalf("the joiner got keyring versions %v, want 1 and 2", res.Keyring.Versions())
			}
			ct, err := kr.Encrypt("rec", []byte("sealed under version 2"))
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := res.Keyring.Decrypt("rec", ct); err != nil || string(pt) != "sealed under version 2" {
				t.Fatalf("the joiner cannot open a record sealed under version 2: %v", err)
			}
			// The keyring was its only way to the version: the rotation
			// left no copy for it in the FSM.
			if p := ca.KeyringState().Pending["n2"]; len(p) != 0 {
				t.Fatalf("copies pending for the joiner: %v", p)
			}
		})
	}
}
