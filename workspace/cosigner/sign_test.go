package cosigner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/store"
	"github.com/coterie-mpc/coterie/workspace/verify"
	decredecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"google.golang.org/protobuf/proto"
)

// fixtureNode is the node's side of the fixture (internal/fixturegen's
// node.json): its key share and presignatures.
type fixtureNode struct {
	share   *mpc.KeyShare
	presigs []*mpc.Presignature
}

func loadFixtureNode(t *testing.T) fixtureNode {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "signer-2of2", "node.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		KeyShare      []byte   `json:"key_share"`
		Presignatures [][]byte `json:"presignatures"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var n fixtureNode
	if n.share, err = mpc.UnmarshalKeyShare(f.KeyShare); err != nil {
		t.Fatal(err)
	}
	for _, raw := range f.Presignatures {
		pre, err := mpc.UnmarshalPresignature(raw)
		if err != nil {
			t.Fatal(err)
		}
		n.presigs = append(n.presigs, pre)
	}
	return n
}

// sign runs one SIGN session through c.Run as user u, with the node's
// party played here (no gRPC relay in between).
func (n fixtureNode) sign(t *testing.T, c *Cosigners, u *protocol.WsUser, req *protocol.WsRequest, index uint32, pre *mpc.Presignature) (*protocol.WsMpcResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eng, err := mpc.New(mpc.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	once := mpc.NewMemPresignStore()
	if err := once.Put(ctx, pre); err != nil {
		t.Fatal(err)
	}
	key := u.GetSigningKey()
	d := req.GetTransaction().GetDigests()[index]
	sid := bytes.Repeat([]byte{byte(index + 1)}, 32)
	node, err := eng.PresignOnline(ctx, mpc.Params{SessionID: sid, Self: n.share.Self(), Parties: toParties(key.GetSignerPartyIds()), Threshold: int(key.GetThreshold())},
		mpc.SignInput{Share: n.share, Digest: d.GetDigest(), Path: mpc.Path(d.GetDerivationPath())}, once, pre.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	in := make(chan *protocol.MpcEnvelope, 64)
	for _, env := range node.Outgoing() {
		in <- env
	}
	var mu sync.Mutex
	send := func(env *protocol.MpcEnvelope) error {
		mu.Lock()
		defer mu.Unlock()
		if err := node.Accept(env); err != nil {
			return err
		}
		for _, out := range node.Outgoing() {
			in <- out
		}
		return nil
	}
	start := &protocol.WsMpcStart{Kind: protocol.WsMpcKind_WS_MPC_KIND_SIGN, SessionId: sid, PresignId: pre.ID().String(), RequestId: req.GetId(), DigestIndex: index}
	return c.Run(ctx, u, start, in, send)
}

// TestSignRecordsOnlyVerified gives the cloud co-signers a combined
// signature that does not verify under the key the workspace derives (the
// user's record names another chain code than the shares were made with,
// so the engine signs for one key and the workspace checks another): the
// request must not be marked signed, and the presignature stays spent. A
// round that does verify is recorded with the derived public key and the
// recovery ID, from which decred's recovery finds that key.
func TestSignRecordsOnlyVerified(t *testing.T) {
	c, u := openFixture(t, 4)
	n := loadFixtureNode(t)
	req, err := c.store.Submit(store.Submission{UserID: u.Id, Actor: store.ActorAdmin, Transaction: &protocol.WsTransaction{
		Asset: "ETH", Operation: "RAW", Source: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
		Digests: []*protocol.WsDigestToSign{
			{Digest: bytes.Repeat([]byte{7}, 32), DerivationPath: []uint32{44, 60, 0, 0, 7}},
			{Digest: bytes.Repeat([]byte{8}, 32), DerivationPath: []uint32{44, 60, 0, 0, 8}},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}

	forged := proto.Clone(u).(*protocol.WsUser)
	forged.SigningKey.ChainCode[0] ^= 1
	_, err = n.sign(t, c, forged, req, 0, n.presigs[0])
	if !errors.Is(err, verify.ErrBadSignature) {
		t.Fatalf("a signature that does not verify: err = %v, want %v", err, verify.ErrBadSignature)
	}
	got, err := c.store.Request(req.Id)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetState() == protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || len(got.GetSignatures()) != 0 {
		t.Fatalf("a signature that does not verify was recorded: %v, %v", got.GetState(), got.GetSignatures())
	}
	if rec, ok, err := c.store.Presignature(u.Id, n.presigs[0].ID()); err != nil || !ok || rec.GetUsedAt() == 0 {
		t.Fatalf("the presignature of the refused round is not spent: %v, %v, %v", rec, ok, err)
	}

	for i, pre := range n.presigs[1:3] {
		index := uint32(i)
		res, err := n.sign(t, c, u, req, index, pre)
		if err != nil {
			t.Fatalf("digest %d: %v", index, err)
		}
		d := req.GetTransaction().GetDigests()[index]
		sig := res.GetRequest().GetSignatures()[index]
		want, err := verify.DerivedKey(u.GetSigningKey(), d)
		if err != nil {
			t.Fatal(err)
		}
		if sig.RecoveryId == nil || !bytes.Equal(sig.GetPublicKey(), want) || !bytes.Equal(sig.GetSignature(), res.GetSignature()) {
			t.Fatalf("digest %d: recorded %v, want public key %x", index, sig, want)
		}
		compact := append([]byte{byte(27 + 4 + sig.GetRecoveryId())}, sig.GetSignature()...)
		pub, _, err := decredecdsa.RecoverCompact(compact, d.GetDigest())
		if err != nil || !bytes.Equal(pub.SerializeCompressed(), want) {
			t.Fatalf("digest %d: recovery with v=%d gave %v, %v; want %x", index, sig.GetRecoveryId(), pub, err, want)
		}
	}
	done, err := c.store.Request(req.Id)
	if err != nil || done.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED {
		t.Fatalf("after both digests: %v, %v", done.GetState(), err)
	}
}
