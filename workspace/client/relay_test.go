package client

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
)

func TestCheckSignInput(t *testing.T) {
	deep := make(mpc.Path, mpc.MaxPathDepth+1)
	for _, tc := range []struct {
		name string
		in   mpc.SignInput
		want error
	}{
		{"ok", mpc.SignInput{Digest: make([]byte, 32), Path: mpc.Path{44, 60, 0, 0, 0}}, nil},
		{"no path", mpc.SignInput{Digest: make([]byte, 32)}, nil},
		{"deepest", mpc.SignInput{Digest: make([]byte, 32), Path: deep[:mpc.MaxPathDepth]}, nil},
		{"largest index", mpc.SignInput{Digest: make([]byte, 32), Path: mpc.Path{1<<31 - 1}}, nil},
		{"short digest", mpc.SignInput{Digest: make([]byte, 31)}, mpc.ErrInvalidParams},
		{"no digest", mpc.SignInput{}, mpc.ErrInvalidParams},
		{"too deep", mpc.SignInput{Digest: make([]byte, 32), Path: deep}, mpc.ErrInvalidPath},
		{"hardened", mpc.SignInput{Digest: make([]byte, 32), Path: mpc.Path{44, 1 << 31}}, mpc.ErrInvalidPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkSignInput(tc.in)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("checkSignInput = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestSignRefusesBeforeTaking checks that Sign refuses an input that the
// engine would refuse before it takes the presignature out of the store,
// and before it contacts the workspace (the client has no connection).
func TestSignRefusesBeforeTaking(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "signer-2of2", "node.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Presignatures [][]byte `json:"presignatures"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	pre, err := mpc.UnmarshalPresignature(f.Presignatures[0])
	if err != nil {
		t.Fatal(err)
	}
	store := mpc.NewMemPresignStore()
	ctx := context.Background()
	if err := store.Put(ctx, pre); err != nil {
		t.Fatal(err)
	}
	req := &protocol.WsRequest{Id: "r-000001", Kind: protocol.WsRequestKind_WS_REQUEST_KIND_TRANSACTION, Body: &protocol.WsRequest_Transaction{
		Transaction: &protocol.WsTransaction{Digests: []*protocol.WsDigestToSign{{Digest: make([]byte, 32), DerivationPath: []uint32{44, 1 << 31}}}},
	}}
	if _, _, err := (&Client{}).Sign(ctx, nil, nil, &protocol.WsSigningKey{}, store, pre.ID(), req, 0); !errors.Is(err, mpc.ErrInvalidPath) {
		t.Fatalf("Sign with a hardened path = %v, want %v", err, mpc.ErrInvalidPath)
	}
	if got, err := store.Take(ctx, pre.ID()); err != nil || got.ID() != pre.ID() {
		t.Fatalf("the presignature is gone after a refused Sign: %v", err)
	}
}
