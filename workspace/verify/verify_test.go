package verify

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	decredecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

func TestSignature(t *testing.T) {
	priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	key := &protocol.WsSigningKey{PublicKey: priv.PubKey().SerializeCompressed(), ChainCode: make([]byte, 32)}
	digest := sha256.Sum256([]byte("tx"))
	// The empty path is the master key, which this test can sign for.
	d := &protocol.WsDigestToSign{Digest: digest[:]}
	sig := decredecdsa.Sign(priv, digest[:])
	r, s := sig.R(), sig.S()
	rb, sb := r.Bytes(), s.Bytes()
	raw := append(rb[:], sb[:]...)
	if err := Signature(key, d, raw); err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), raw...)
	flipped[10] ^= 1
	var highS secp256k1.ModNScalar
	highS.NegateVal(&s)
	hb := highS.Bytes()
	high := append(rb[:], hb[:]...)
	other := &protocol.WsDigestToSign{Digest: make([]byte, 32)}
	deeper := &protocol.WsDigestToSign{Digest: digest[:], DerivationPath: []uint32{1}}
	cases := []struct {
		name string
		key  *protocol.WsSigningKey
		d    *protocol.WsDigestToSign
		sig  []byte
		want error
	}{
		{"flipped bit", key, d, flipped, ErrBadSignature},
		{"high S", key, d, high, ErrBadSignature},
		{"short", key, d, raw[:63], ErrBadSignature},
		{"other digest", key, other, raw, ErrBadSignature},
		{"other path", key, deeper, raw, ErrBadSignature},
		{"no key", nil, d, raw, ErrNoKey},
	}
	for _, c := range cases {
		if err := Signature(c.key, c.d, c.sig); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}

	req := &protocol.WsRequest{
		Id: "r-000001", Seq: 1, WorkspaceId: "default", UserId: "u-0001",
		Body:       &protocol.WsRequest_Transaction{Transaction: &protocol.WsTransaction{Digests: []*protocol.WsDigestToSign{d}}},
		Signatures: []*protocol.WsDigestSignature{{Index: 0, Signature: raw}},
		State:      protocol.WsRequestState_WS_REQUEST_STATE_SIGNED,
	}
	user := &protocol.WsUser{Id: "u-0001", SigningKey: key}
	if p, n, _ := Stored(user, req); len(p) != 0 || n != 1 {
		t.Fatalf("Stored = %v, %d", p, n)
	}
	req.Signatures[0].Signature = flipped
	if p, _, _ := Stored(user, req); len(p) != 1 {
		t.Fatalf("Stored of a bad signature = %v", p)
	}
}

func TestApproval(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	user := &protocol.WsUser{Id: "u-0002", ApprovalPublicKey: pub}
	req := &protocol.WsRequest{
		Id: "r-000002", WorkspaceId: "default", UserId: "u-0002",
		State: protocol.WsRequestState_WS_REQUEST_STATE_APPROVED,
		Body: &protocol.WsRequest_ConfigChange{ConfigChange: &protocol.WsConfigChange{
			Type:    protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ENABLE_ONE_TIME_ADDRESS,
			Payload: &protocol.WsConfigChange_OneTimeAddress{OneTimeAddress: &protocol.WsOneTimeAddress{Enabled: true}},
		}},
	}
	digest, err := protocol.ApprovalDigest(req)
	if err != nil {
		t.Fatal(err)
	}
	req.ApprovalSignature = ed25519.Sign(priv, digest[:])
	if err := Approval(user, req, req.ApprovalSignature); err != nil {
		t.Fatal(err)
	}
	if p, _, n := Stored(user, req); len(p) != 0 || n != 1 {
		t.Fatalf("Stored = %v, %d", p, n)
	}
	req.GetConfigChange().GetOneTimeAddress().Enabled = false
	if err := Approval(user, req, req.ApprovalSignature); !errors.Is(err, ErrBadApproval) {
		t.Fatalf("changed payload: %v", err)
	}
	if err := Approval(&protocol.WsUser{}, req, req.ApprovalSignature); !errors.Is(err, ErrNoKey) {
		t.Fatalf("no key: %v", err)
	}
	req.ApprovalSignature = nil
	if p, _, _ := Stored(user, req); len(p) != 1 {
		t.Fatal("an approved request without a signature passed")
	}
}
