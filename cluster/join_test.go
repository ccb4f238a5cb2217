package cluster_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/enclavetest"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/enclave/sim"
)

// joinNode is a node of a join test: its enclave, identity and config.
type joinNode struct {
	id  string
	enc *sim.Enclave
	key ed25519.PrivateKey
	cfg cluster.Config
}

func newJoinNode(t *testing.T, m *enclavetest.Machine, id string, edit func(*sim.Config)) *joinNode {
	dir := t.TempDir()
	n := &joinNode{id: id, enc: m.Enclave(filepath.Join(dir, "enclave"), edit), key: identity(t)}
	n.cfg = tlsConfig(t, id, dir, freeAddr(t), n.key, nil)
	n.cfg.Members = nil // the cluster's own member table
	n.cfg.Attester = n.enc
	return n
}

func (n *joinNode) member() cluster.Member {
	return cluster.Member{ID: n.id, Address: n.cfg.BindAddr, IdentityKey: n.key.Public().(ed25519.PublicKey),
		Enclave: n.enc.Self(), Location: "onprem:" + n.id}
}

func (n *joinNode) params(token string, policy enclave.Policy) cluster.JoinParams {
	return cluster.JoinParams{Token: token, NodeID: n.id, Address: n.cfg.BindAddr, Location: "cloud:" + n.id,
		Identity: n.key, Attester: n.enc, Policy: policy}
}

func selfPolicy(e *sim.Enclave) enclave.Policy {
	self := e.Self()
	return enclave.Policy{Allow: []enclave.Rule{{Kind: self.Kind, Measurement: self.Measurement, AllowDebug: true}}}
}

// TestJoin: a node bootstraps a TLS cluster and initializes its member
// table; a second node joins with a join token over the cluster port,
// attested both ways, gets the keyring, starts as a non-voter with the
// member table it was given, catches up, becomes a voter, and proposes.
func TestJoin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := enclavetest.NewMachine(t)
	kr, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	a := newJoinNode(t, m, "n1", nil)
	a.cfg.Bootstrap, a.cfg.Keyring = true, kr
	saved := make(chan cluster.KnownMembers, 16)
	a.cfg.SaveMembers = func(k cluster.KnownMembers) error { saved <- k; return nil }
	policy := selfPolicy(a.enc)
	ca := startTLS(t, a.cfg)
	if err := ca.Init(ctx, policy, a.member()); err != nil {
		t.Fatal(err)
	}
	ticket, err := ca.IssueJoinToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	b := newJoinNode(t, m, "n2", nil)
	res, err := cluster.Join(ctx, b.params(ticket.String(), policy))
	if err != nil {
		t.Fatal(err)
	}
	if res.ClusterID != ca.ClusterID() || len(res.Members) != 2 {
		t.Fatalf("joined %s with %d members, want %s and 2", res.ClusterID, len(res.Members), ca.ClusterID())
	}
	ct, _ := kr.Encrypt("rec", []byte("secret"))
	if pt, err := res.Keyring.Decrypt("rec", ct); err != nil || string(pt) != "secret" {
		t.Fatalf("the joiner's keyring is not the cluster's: %v", err)
	}
	if voter, _ := ca.IsVoter("n2"); voter {
		t.Fatal("the joiner is a voter before it caught up")
	}
	// The same token and key again (a retried join) work; nothing doubles.
	if _, err := cluster.Join(ctx, b.params(ticket.String(), policy)); err != nil {
		t.Fatalf("retried join: %v", err)
	}

	b.cfg.KnownMembers, b.cfg.Keyring = res.Known(), res.Keyring
	cb, err := cluster.New(b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cb.Close() })
	if err := cb.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if cb.ClusterID() != ca.ClusterID() {
		t.Fatalf("the joiner's replica has cluster %q", cb.ClusterID())
	}
	// A member promotes only itself: whether a node may be a voter (does
	// its data directory outlive it?) is the node's to say.
	if err := cb.AddVoter(ctx, "n1", a.member().Address); !errors.Is(err, cluster.ErrForbidden) {
		t.Fatalf("n2 asking to make n1 a voter: %v, want ErrForbidden", err)
	}
	if err := cb.AddVoter(ctx, "n2", b.cfg.BindAddr); err != nil {
		t.Fatal(err)
	}
	if voter, _ := ca.IsVoter("n2"); !voter {
		t.Fatal("the joiner was not promoted")
	}
	if err := cb.Claim(ctx, "r1", "u1"); err != nil {
		t.Fatalf("a proposal from the joined node: %v", err)
	}
	mb, ok := ca.FSM().MemberByID("n2")
	if !ok || mb.Location != "cloud:n2" || mb.JoinedWith != ticket.TokenID || !mb.IdentityKey.Equal(b.key.Public().(ed25519.PublicKey)) {
		t.Fatalf("member table: %+v, %v", mb, ok)
	}

	// The bootstrapping node restarts. Raft replays its log only once a
	// leader is known, so until then it lets peers in by the member table
	// it saved last: the cluster elects again and commits.
	var last cluster.KnownMembers
	for len(saved) > 0 {
		last = <-saved
	}
	if len(last.Members) != 2 || last.Index == 0 {
		t.Fatalf("saved member table %+v", last)
	}
	if err := ca.Close(); err != nil {
		t.Fatal(err)
	}
	a.cfg.KnownMembers = last
	ca2, err := cluster.New(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ca2.Close() })
	if err := ca2.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cb.Claim(ctx, "r2", "u1"); err != nil {
		t.Fatalf("a proposal after the restart: %v", err)
	}
	if err := ca2.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := ca2.Request("r2"); !ok {
		t.Fatal("the restarted node did not apply the new claim")
	}
}

// TestJoinRefused: each bad input to a join gets a clear error and leaves
// the member table and raft's configuration as they were.
func TestJoinRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := enclavetest.NewMachine(t)
	kr, _ := keyring.Generate()
	a := newJoinNode(t, m, "n1", nil)
	a.cfg.Bootstrap, a.cfg.Keyring = true, kr
	policy := selfPolicy(a.enc)
	ca := startTLS(t, a.cfg)
	if err := ca.Init(ctx, policy, a.member()); err != nil {
		t.Fatal(err)
	}
	issue := func() cluster.JoinTicket {
		tk, err := ca.IssueJoinToken(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	joiner := newJoinNode(t, m, "n2", nil)

	t.Run("wrong secret", func(t *testing.T) {
		tk := issue()
		tk.Secret[0] ^= 1
		_, err := cluster.Join(ctx, joiner.params(tk.String(), policy))
		if !errors.Is(err, cluster.ErrJoinRefused) || !strings.Contains(err.Error(), "secret is wrong") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		tk := issue()
		tk.TokenID = "jt-0000000000000000"
		_, err := cluster.Join(ctx, joiner.params(tk.String(), policy))
		if !errors.Is(err, cluster.ErrJoinRefused) || !strings.Contains(err.Error(), "unknown or expired") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("expired token", func(t *testing.T) {
		tk := issue()
		p := joiner.params(tk.String(), policy)
		p.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		if _, err := cluster.Join(ctx, p); !errors.Is(err, cluster.ErrJoinTokenExpired) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("garbage token", func(t *testing.T) {
		if _, err := cluster.Join(ctx, joiner.params("coterie-join-v1.AAAA", policy)); !errors.Is(err, cluster.ErrMalformedJoinToken) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("evidence the policy does not allow", func(t *testing.T) {
		tk := issue()
		other := newJoinNode(t, m, "n3", func(c *sim.Config) { c.Measurement = bytes.Repeat([]byte{7}, 32) })
		_, err := cluster.Join(ctx, other.params(tk.String(), selfPolicy(other.enc)))
		if !errors.Is(err, cluster.ErrJoinRefused) || !strings.Contains(err.Error(), "not allowed") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("evidence from an untrusted machine", func(t *testing.T) {
		tk := issue()
		stranger := newJoinNode(t, enclavetest.NewMachine(t), "n4", nil)
		_, err := cluster.Join(ctx, stranger.params(tk.String(), policy))
		if !errors.Is(err, cluster.ErrJoinRefused) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a member the joiner's policy does not allow", func(t *testing.T) {
		tk := issue()
		strict := enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindSim, Measurement: bytes.Repeat([]byte{9}, 32)}}}
		if _, err := cluster.Join(ctx, joiner.params(tk.String(), strict)); !errors.Is(err, cluster.ErrMemberNotAttested) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a token pinned to another member", func(t *testing.T) {
		tk := issue()
		tk.MemberPin[0] ^= 1
		if _, err := cluster.Join(ctx, joiner.params(tk.String(), policy)); !errors.Is(err, cluster.ErrForbidden) {
			t.Fatalf("got %v", err)
		}
	})
	// Nothing of the refused joins entered the member table or raft.
	if ms := ca.Members(); len(ms) != 1 {
		t.Fatalf("%d members after refused joins, want 1", len(ms))
	}
	if servers, _ := ca.Servers(); len(servers) != 1 {
		t.Fatalf("%d raft servers after refused joins, want 1", len(servers))
	}
	t.Run("token used by another node", func(t *testing.T) {
		tk := issue()
		if _, err := cluster.Join(ctx, joiner.params(tk.String(), policy)); err != nil {
			t.Fatal(err)
		}
		second := newJoinNode(t, m, "n5", nil)
		_, err := cluster.Join(ctx, second.params(tk.String(), policy))
		if !errors.Is(err, cluster.ErrJoinRefused) || !strings.Contains(err.Error(), "used by another node") {
			t.Fatalf("got %v", err)
		}
	})
}

// blindAttester is an attester that can check no evidence, as a Nitro
// node cannot check an SGX member's quote.
type blindAttester struct{ enclave.Attester }

func (blindAttester) Verify(context.Context, []byte, enclave.Policy) (enclave.Identity, error) {
	return enclave.Identity{}, fmt.Errorf("%w: this test node verifies nothing", enclave.ErrUnsupportedKind)
}

// TestJoinThroughUnverifiableMember: a joiner that cannot check the
// member's kind of evidence refuses the member, unless it names the kind
// in UnverifiableKinds; the member checks the joiner's evidence either
// way.
func TestJoinThroughUnverifiableMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := enclavetest.NewMachine(t)
	// TestJoin's first member, without its saved member tables.
	a := newJoinNode(t, m, "n1", nil)
	a.cfg.Bootstrap = true
	var err error
	if a.cfg.Keyring, err = keyring.Generate(); err != nil {
		t.Fatal(err)
	}
	policy := selfPolicy(a.enc)
	ca := startTLS(t, a.cfg)
	if err := ca.Init(ctx, policy, a.member()); err != nil {
		t.Fatal(err)
	}
	ticket, err := ca.IssueJoinToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b := newJoinNode(t, m, "n2", nil)
	p := b.params(ticket.String(), policy)
	p.Attester = blindAttester{b.enc}
	if _, err := cluster.Join(ctx, p); !errors.Is(err, cluster.ErrMemberNotAttested) {
		t.Fatalf("join through a member it cannot verify = %v, want ErrMemberNotAttested", err)
	}
	p.UnverifiableKinds = []enclave.Kind{enclave.KindSGX}
	if _, err := cluster.Join(ctx, p); !errors.Is(err, cluster.ErrMemberNotAttested) {
		t.Fatalf("join through a member of a kind not named = %v, want ErrMemberNotAttested", err)
	}
	p.UnverifiableKinds = []enclave.Kind{a.enc.Self().Kind}
	res, err := cluster.Join(ctx, p)
	if err != nil {
		t.Fatalf("join through a member of a kind named unverifiable: %v", err)
	}
	if res.Member.Kind != a.enc.Self().Kind || len(res.Member.Measurement) != 0 {
		t.Fatalf("the unverified member's identity: %s", res.Member)
	}
	// The member still checks the joiner: evidence of a machine it does
	// not trust gets no keyring.
	stranger := newJoinNode(t, enclavetest.NewMachine(t), "n3", nil)
	ticket2, err := ca.IssueJoinToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p3 := stranger.params(ticket2.String(), policy)
	p3.Attester, p3.UnverifiableKinds = blindAttester{stranger.enc}, []enclave.Kind{a.enc.Self().Kind}
	if _, err := cluster.Join(ctx, p3); err == nil {
		t.Fatal("a joiner of an untrusted machine joined")
	}
}
