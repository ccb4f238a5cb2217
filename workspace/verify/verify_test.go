package verify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	decredecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"google.golang.org/protobuf/proto"
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
	pub, _, err := Signature(key, d, raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub, key.PublicKey) {
		t.Fatalf("derived key of the empty path is %x, want the master key", pub)
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
		if _, _, err := Signature(c.key, c.d, c.sig); !errors.Is(err, c.want) {
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
	req.Signatures[0].Signature = raw
	id, err := SignatureUnder(key.PublicKey, d, raw)
	if err != nil {
		t.Fatal(err)
	}
	req.Signatures[0].RecoveryId = proto.Uint32(uint32(id ^ 1))
	if p, _, _ := Stored(user, req); len(p) != 1 || !strings.Contains(p[0].Err.Error(), "recovery ID") {
		t.Fatalf("Stored of a wrong recovery ID = %v", p)
	}
	req.Signatures[0].RecoveryId = proto.Uint32(uint32(id))
	req.Signatures[0].PublicKey = make([]byte, 33)
	if p, _, _ := Stored(user, req); len(p) != 1 || !strings.Contains(p[0].Err.Error(), "public key") {
		t.Fatalf("Stored of a wrong public key = %v", p)
	}
}

// childKey derives the private key at path below (priv, chainCode) by
// BIP-32 unhardened private derivation (CKDpriv), written out here so that
// the test checks verify.DerivedKey against the standard, not against
// itself.
func childKey(t *testing.T, priv *secp256k1.PrivateKey, chainCode []byte, path []uint32) *secp256k1.PrivateKey {
	t.Helper()
	k := priv.Key
	cc := chainCode
	for _, i := range path {
		parent := secp256k1.NewPrivateKey(&k)
		mac := hmac.New(sha512.New, cc)
		mac.Write(parent.PubKey().SerializeCompressed())
		mac.Write(binary.BigEndian.AppendUint32(nil, i))
		sum := mac.Sum(nil)
		var tweak secp256k1.ModNScalar
		if tweak.SetByteSlice(sum[:32]) {
			t.Fatal("tweak overflows; pick another path")
		}
		k.Add(&tweak)
		cc = sum[32:]
	}
	return secp256k1.NewPrivateKey(&k)
}

// TestRecoveryID checks the recovery ID that the workspace records with
// each signature: decred's public-key recovery, another implementation
// than the workspace's forward computation, finds the derived key from
// (r, s, v) and the digest, and decred's own compact signing picks the
// same v. Both parities must occur.
func TestRecoveryID(t *testing.T) {
	seed := sha256.Sum256([]byte("verify test master key"))
	master := secp256k1.PrivKeyFromBytes(seed[:])
	chain := sha256.Sum256([]byte("verify test chain code"))
	key := &protocol.WsSigningKey{PublicKey: master.PubKey().SerializeCompressed(), ChainCode: chain[:]}
	parities := map[byte]int{}
	for i := range uint32(16) {
		digest := sha256.Sum256(fmt.Appendf(nil, "transaction %d", i))
		d := &protocol.WsDigestToSign{Digest: digest[:], DerivationPath: []uint32{44, 60, 0, 0, i}}
		child := childKey(t, master, key.ChainCode, d.DerivationPath)
		compact := decredecdsa.SignCompact(child, digest[:], true) // 27+4+v || r || s
		pub, v, err := Signature(key, d, compact[1:])
		if err != nil {
			t.Fatalf("digest %d: %v", i, err)
		}
		if !bytes.Equal(pub, child.PubKey().SerializeCompressed()) {
			t.Fatalf("digest %d: derived key %x, want %x", i, pub, child.PubKey().SerializeCompressed())
		}
		if want := compact[0] - 27 - 4; v != want {
			t.Fatalf("digest %d: recovery ID %d, decred's compact signature says %d", i, v, want)
		}
		recovered, compressed, err := decredecdsa.RecoverCompact(append([]byte{27 + 4 + v}, compact[1:]...), digest[:])
		if err != nil || !compressed || !bytes.Equal(recovered.SerializeCompressed(), pub) {
			t.Fatalf("digest %d: recovery with v=%d gave %x, %v; want %x", i, v, recovered.SerializeCompressed(), err, pub)
		}
		wrong, _, err := decredecdsa.RecoverCompact(append([]byte{27 + 4 + v ^ 1}, compact[1:]...), digest[:])
		if err == nil && bytes.Equal(wrong.SerializeCompressed(), pub) {
			t.Fatalf("digest %d: the other v recovers the same key", i)
		}
		parities[v]++
	}
	if parities[0] == 0 || parities[1] == 0 {
		t.Fatalf("recovery IDs seen: %v; want both parities", parities)
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
