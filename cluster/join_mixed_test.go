package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/backend"
	"github.com/coterie-mpc/coterie/enclave/enclavetest"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/enclave/nitro/nitrotest"
)

// TestJoinMixedKinds: a sim member, verifying with the verifiers every
// backend gets (backend.Verifiers), admits a joiner whose evidence is a
// Nitro attestation document the policy allows, and refuses one whose
// PCRs it does not allow, one in debug mode, or one whose document does not chain to the trusted
// root. The documents come from a test PKI, which the member's Nitro
// verifier is given as its root, as production gives it the AWS root.
func TestJoinMixedKinds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := enclavetest.NewMachine(t)
	pki := nitrotest.NewPKI(t, time.Now())
	kr, _ := keyring.Generate()

	a := newJoinNode(t, m, "n1", nil)
	vs, err := backend.Verifiers(backend.Config{Kind: enclave.KindSim, NitroRoots: pki.Roots(), Clock: clock.Real()}, a.enc)
	if err != nil {
		t.Fatal(err)
	}
	a.cfg.Attester = enclave.WithVerifier(a.enc, vs)
	a.cfg.Bootstrap, a.cfg.Keyring = true, kr
	policy := selfPolicy(a.enc)
	policy.Allow = append(policy.Allow, enclave.Rule{Kind: enclave.KindNitro, Measurement: nitrotest.PCR(0xa0),
		PCRs: map[uint32][]byte{2: nitrotest.PCR(2)}})
	ca := startTLS(t, a.cfg)
	if err := ca.Init(ctx, policy, a.member()); err != nil {
		t.Fatal(err)
	}

	// nitroJoiner is a node whose evidence is a Nitro document of pki
	// with pcrs. It verifies the sim member with a sim
	// enclave of the member's machine.
	nitroJoiner := func(id string, pki *nitrotest.PKI, pcrs map[uint32][]byte) cluster.JoinParams {
		n := newJoinNode(t, m, id, nil)
		tk, err := ca.IssueJoinToken(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		p := n.params(tk.String(), policy)
		p.Attester = &nitrotest.Attester{Verifier: n.enc, T: t, PKI: pki, PCRs: pcrs, Now: time.Now}
		return p
	}

	t.Run("allowed PCRs", func(t *testing.T) {
		res, err := cluster.Join(ctx, nitroJoiner("nitro-ok", pki, nitrotest.PCRs(0xa0)))
		if err != nil {
			t.Fatal(err)
		}
		ct, _ := kr.Encrypt("rec", []byte("secret"))
		if pt, err := res.Keyring.Decrypt("rec", ct); err != nil || string(pt) != "secret" {
			t.Fatalf("the Nitro joiner did not get the cluster's keyring: %v", err)
		}
		mb, ok := ca.FSM().MemberByID("nitro-ok")
		if !ok || mb.Enclave.Kind != enclave.KindNitro || !bytes.Equal(mb.Enclave.Measurement, nitrotest.PCR(0xa0)) {
			t.Fatalf("member table: %+v, %v", mb, ok)
		}
	})
	for _, tc := range []struct {
		name string
		pki  *nitrotest.PKI
		pcrs map[uint32][]byte
		want string
	}{
		{"PCR0 not allowed", pki, nitrotest.PCRs(0xbb), "not allowed"},
		// PCR2 is pinned through the FSM's copy of the policy.
		{"PCR2 not allowed", pki, func() map[uint32][]byte { p := nitrotest.PCRs(0xa0); p[2] = nitrotest.PCR(0x22); return p }(), "not allowed"},
		{"debug mode", pki, nitrotest.DebugPCRs(), "debug mode"},
		{"another root", nitrotest.NewPKI(t, time.Now()), nitrotest.PCRs(0xa0), "does not chain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cluster.Join(ctx, nitroJoiner("nitro-"+strings.ReplaceAll(tc.name, " ", "-"), tc.pki, tc.pcrs))
			if !errors.Is(err, cluster.ErrJoinRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Join = %v, want ErrJoinRefused with %q", err, tc.want)
			}
			t.Log(err)
		})
	}
	if ms := ca.Members(); len(ms) != 2 {
		t.Fatalf("%d members, want the bootstrap node and the allowed Nitro joiner", len(ms))
	}
}
