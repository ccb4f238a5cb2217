package cluster_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/backend"
	"github.com/coterie-mpc/coterie/enclave/enclavetest"
	"github.com/coterie-mpc/coterie/enclave/gcpcs"
	"github.com/coterie-mpc/coterie/enclave/gcpcs/gcpcstest"
	"github.com/coterie-mpc/coterie/enclave/keyring"
)

// tokenSource is a gcpcs.TokenSource that mints tokens of a test issuer
// for an image digest, as a Confidential Space launcher would.
type tokenSource struct {
	t      *testing.T
	issuer *gcpcstest.Issuer
	digest []byte
}

func (s tokenSource) Token(_ context.Context, audience string, nonces []string) (string, error) {
	return s.issuer.Token(s.t, gcpcstest.Spec{Audience: audience, IssuedAt: time.Now(), Nonces: nonces,
		ImageDigest: "sha256:" + hex.EncodeToString(s.digest)}), nil
}

// TestJoinConfidentialSpaceIssuer: which Confidential Space tokens a
// member accepts is the cluster's policy, recorded through raft, and not
// what the member can reach. A sim member whose HTTP client reaches two
// test issuers admits a joiner with a token of the issuer its policy
// names, refuses one of the other issuer without fetching that issuer's
// keys, and after SetPolicy names the other issuer instead, admits that
// issuer's joiner and refuses the first's.
func TestJoinConfidentialSpaceIssuer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := enclavetest.NewMachine(t)
	kr, _ := keyring.Generate()
	issA, issB := gcpcstest.NewIssuer(t), gcpcstest.NewIssuer(t)
	digest := bytes.Repeat([]byte{0xc5}, enclave.ImageDigestSize)

	a := newJoinNode(t, m, "n1", nil)
	// httptest's servers share one certificate: this client reaches both
	// issuers, as a host could make a node reach an issuer of its own.
	gcfg := gcpcs.DefaultConfig()
	gcfg.HTTPClient = issA.Server.Client()
	vs, err := backend.Verifiers(backend.Config{Kind: enclave.KindSim, ConfidentialSpace: &gcfg, Clock: clock.Real()}, a.enc)
	if err != nil {
		t.Fatal(err)
	}
	a.cfg.Attester = enclave.WithVerifier(a.enc, vs)
	a.cfg.Bootstrap, a.cfg.Keyring = true, kr
	admitting := func(iss *gcpcstest.Issuer) enclave.Policy {
		p := selfPolicy(a.enc)
		p.Allow = append(p.Allow, enclave.Rule{Kind: enclave.KindConfidentialSpace, Measurement: digest, Issuer: iss.URL()})
		return p
	}
	ca := startTLS(t, a.cfg)
	if err := ca.Init(ctx, admitting(issA), a.member()); err != nil {
		t.Fatal(err)
	}

	// join has a node whose evidence is a token of iss join through ca. It
	// verifies the sim member with a sim enclave of the member's machine.
	n := 0
	join := func(iss *gcpcstest.Issuer) (string, error) {
		n++
		id := "cs-" + string(rune('a'+n))
		j := newJoinNode(t, m, id, nil)
		tk, err := ca.IssueJoinToken(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		p := j.params(tk.String(), selfPolicy(a.enc))
		p.Attester = gcpcs.NewAttester(tokenSource{t: t, issuer: iss, digest: digest}, j.enc)
		_, err = cluster.Join(ctx, p)
		return id, err
	}
	admitted := func(iss *gcpcstest.Issuer) {
		t.Helper()
		id, err := join(iss)
		if err != nil {
			t.Fatalf("a joiner of the issuer the policy names: %v", err)
		}
		if mb, ok := ca.FSM().MemberByID(id); !ok || mb.Enclave.Kind != enclave.KindConfidentialSpace || !bytes.Equal(mb.Enclave.Measurement, digest) {
			t.Fatalf("member table: %+v, %v", mb, ok)
		}
	}
	refused := func(iss *gcpcstest.Issuer) {
		t.Helper()
		_, err := join(iss)
		if !errors.Is(err, cluster.ErrJoinRefused) || !strings.Contains(err.Error(), "from an issuer the policy does not name") {
			t.Fatalf("a joiner of an issuer the policy does not name: %v, want ErrJoinRefused for its issuer", err)
		}
		t.Log(err)
	}

	admitted(issA)
	refused(issB)
	if f := issB.KeyFetches.Load(); f != 0 {
		t.Fatalf("the keys of an issuer the policy does not name were fetched %d times", f)
	}
	if err := ca.SetPolicy(ctx, admitting(issB)); err != nil {
		t.Fatal(err)
	}
	admitted(issB)
	refused(issA)
	if ms := ca.Members(); len(ms) != 3 {
		t.Fatalf("%d members, want the bootstrap node and one joiner of each issuer", len(ms))
	}
}
