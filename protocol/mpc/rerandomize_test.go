package mpc_test

import (
	"bytes"
	"testing"

	"github.com/coterie-mpc/coterie/protocol/mpc"
)

// TestPresignOnlineRerandomizes: a signature made with a presignature does
// not carry the presignature's nonce R but R' = ρ·R, where ρ hashes the
// presignature, the key, the path and the digest; another digest or path
// gives another nonce. The signature verifies under the derived key with
// an independent verifier, as every online round's does.
func TestPresignOnlineRerandomizes(t *testing.T) {
	e := newEngine(t)
	fx := loadFixture(t, "2of2")
	pub, chain := sameKey(t, fx.Shares)
	stores, id, signers := fixtureStores(t, fx, 0)
	pre := fx.Presignatures[0][signers[0]]
	share := fx.Shares[signers[0]]
	path, digest := mpc.Path{44, 60, 0, 0, 3}, digestOf("re-randomized")

	sig := signatureOf(t, startOnline(t, e, fx.Shares, signers, stores, id, digest, path))
	derived, err := mpc.DerivePublicKey(pub, chain, path)
	if err != nil {
		t.Fatal(err)
	}
	verifyIndependently(t, derived, digest, sig)

	r, err := mpc.PresignatureNonce(pre)
	if err != nil {
		t.Fatal(err)
	}
	want, err := mpc.RerandomizedNonce(pre, share, path, digest)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(r[1:], sig.R[:]) {
		t.Fatal("the signature carries the presignature's own nonce")
	}
	if !bytes.Equal(want[1:], sig.R[:]) {
		t.Fatalf("signature nonce %x, want the re-randomized %x", sig.R, want[1:])
	}
	for name, other := range map[string]func() ([]byte, error){
		"another digest": func() ([]byte, error) { return mpc.RerandomizedNonce(pre, share, path, digestOf("another")) },
		"another path":   func() ([]byte, error) { return mpc.RerandomizedNonce(pre, share, mpc.Path{44, 60, 0, 0, 4}, digest) },
		"the master key": func() ([]byte, error) { return mpc.RerandomizedNonce(pre, share, nil, digest) },
	} {
		got, err := other()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(got, want) || bytes.Equal(got, r) {
			t.Errorf("%s: nonce %x, want one of its own", name, got)
		}
	}
}
