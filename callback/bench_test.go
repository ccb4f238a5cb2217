package callback

import (
	"context"
	"crypto"
	"crypto/rsa"
	"net/http/httptest"
	"testing"
)

// BenchmarkDecodeResponse measures verifying one handler answer.
func BenchmarkDecodeResponse(b *testing.B) {
	k := testKeys()
	for _, key := range []crypto.Signer{k.handlerRSA, k.handlerEC} {
		name := "RS256"
		if key == crypto.Signer(k.handlerEC) {
			name = "ES256"
		}
		b.Run(name, func(b *testing.B) {
			tok := []byte(mustEncodeResponse(b, Decision{Action: ActionApprove, RequestID: "r1"}, key, t0))
			for b.Loop() {
				if _, err := DecodeResponse(tok, key.Public(), expect(KindTransaction, "r1"), t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeRequest measures signing one request with the node's key.
func BenchmarkEncodeRequest(b *testing.B) {
	k := testKeys()
	req := testTx("r1")
	for b.Loop() {
		if _, err := EncodeRequest(req, k.node, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAskLoopback measures one whole attempt against the reference
// server over loopback HTTP: sign, send, verify, decide, sign, verify.
func BenchmarkAskLoopback(b *testing.B) {
	k := testKeys()
	p, err := ParsePolicy([]byte("{}"))
	if err != nil {
		b.Fatal(err)
	}
	scfg := DefaultServerConfig()
	scfg.Policy, scfg.Key = p, k.handlerEC
	scfg.CosignerKeys = []*rsa.PublicKey{&k.node.PublicKey}
	srv, err := NewServer(scfg)
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	cfg := DefaultConfig()
	cfg.URL, cfg.HandlerKey, cfg.SigningKey = ts.URL, k.handlerEC.Public(), k.node
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := testTx("r1")
	for b.Loop() {
		if d, err := c.Ask(context.Background(), req); err != nil || !d.Approved() {
			b.Fatal(d, err)
		}
	}
}
