package mpc_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/protocol/mpc/internal/mpctest"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// runTimeout bounds one in-process protocol run; it only matters if a bug
// makes a run hang, since runs end by themselves.
const runTimeout = 3 * time.Minute

type testLogWriter struct {
	mu sync.Mutex
	t  testing.TB
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func newEngine(t testing.TB) *mpc.Engine {
	t.Helper()
	cfg := mpc.DefaultConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(&testLogWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := mpc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var (
	fixtureMu    sync.Mutex
	fixtureCache = map[string]*mpctest.Fixture{}
)

// loadFixture returns the test-only keys of a setup ("2of2", "2of3",
// "3of3"). Key shares are immutable, so tests share them; presignatures
// must be put into a fresh store by each test.
func loadFixture(t testing.TB, setup string) *mpctest.Fixture {
	t.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if fx, ok := fixtureCache[setup]; ok {
		return fx
	}
	fx, err := mpctest.LoadFixture(mpctest.FixturePath(setup))
	if err != nil {
		t.Fatalf("load fixture %s (regenerate with go generate ./protocol/mpc): %v", setup, err)
	}
	fixtureCache[setup] = fx
	return fx
}

func sessionID(t testing.TB) []byte {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func digestOf(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

// run drives the machines and fails the test on a router error.
func run(t testing.TB, machines map[mpc.PartyID]mpc.Machine, opts mpctest.Options) map[mpc.PartyID]*mpctest.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	out, err := mpctest.Run(ctx, machines, opts)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	return out
}

// requireSuccess fails the test unless every party finished cleanly.
func requireSuccess(t testing.TB, out map[mpc.PartyID]*mpctest.Outcome) {
	t.Helper()
	for id, o := range out {
		if o.Err != nil {
			t.Fatalf("party %s: %v", id, o.Err)
		}
		if len(o.Rejected) > 0 {
			t.Fatalf("party %s rejected messages: %v", id, o.Rejected)
		}
	}
}

// keygen runs a real key generation.
func keygen(t testing.TB, e *mpc.Engine, parties []mpc.PartyID, threshold int) map[mpc.PartyID]*mpc.KeyShare {
	t.Helper()
	sid := sessionID(t)
	ss, err := mpctest.Start(parties, func(id mpc.PartyID) (*mpc.Session[*mpc.KeyShare], error) {
		return e.Keygen(mpc.Params{SessionID: sid, Self: id, Parties: parties, Threshold: threshold})
	})
	if err != nil {
		t.Fatal(err)
	}
	requireSuccess(t, run(t, mpctest.Machines(ss), mpctest.Options{}))
	return results(t, ss)
}

func results[T any](t testing.TB, ss map[mpc.PartyID]*mpc.Session[T]) map[mpc.PartyID]T {
	t.Helper()
	out := make(map[mpc.PartyID]T, len(ss))
	for id, s := range ss {
		r, err := s.Result()
		if err != nil {
			t.Fatalf("party %s: %v", id, err)
		}
		out[id] = r
	}
	return out
}

// presign runs a real presign among signers and puts each share into that
// party's store.
func presign(t testing.TB, e *mpc.Engine, shares map[mpc.PartyID]*mpc.KeyShare, signers []mpc.PartyID,
	stores map[mpc.PartyID]mpc.PresignStore) mpc.PresignatureID {
	t.Helper()
	sid := sessionID(t)
	ss, err := mpctest.Start(signers, func(id mpc.PartyID) (*mpc.Session[*mpc.Presignature], error) {
		return e.Presign(mpc.Params{SessionID: sid, Self: id, Parties: signers, Threshold: shares[id].Threshold()}, shares[id])
	})
	if err != nil {
		t.Fatal(err)
	}
	requireSuccess(t, run(t, mpctest.Machines(ss), mpctest.Options{}))
	var id mpc.PresignatureID
	for party, p := range results(t, ss) {
		if id != (mpc.PresignatureID{}) && p.ID() != id {
			t.Fatalf("signers disagree on the presignature ID")
		}
		id = p.ID()
		if err := stores[party].Put(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// memStores returns a fresh in-memory store per party.
func memStores(parties []mpc.PartyID) map[mpc.PartyID]mpc.PresignStore {
	out := make(map[mpc.PartyID]mpc.PresignStore, len(parties))
	for _, id := range parties {
		out[id] = mpc.NewMemPresignStore()
	}
	return out
}

// fixtureStores puts fixture presignature set i into fresh stores.
func fixtureStores(t testing.TB, fx *mpctest.Fixture, i int) (map[mpc.PartyID]mpc.PresignStore, mpc.PresignatureID, []mpc.PartyID) {
	t.Helper()
	set := fx.Presignatures[i]
	var signers []mpc.PartyID
	var id mpc.PresignatureID
	for p, pre := range set {
		signers = append(signers, p)
		id = pre.ID()
	}
	slices.Sort(signers)
	stores := memStores(signers)
	for p, pre := range set {
		if err := stores[p].Put(context.Background(), pre); err != nil {
			t.Fatal(err)
		}
	}
	return stores, id, signers
}

// startOnline creates the online sessions of every signer.
func startOnline(t testing.TB, e *mpc.Engine, shares map[mpc.PartyID]*mpc.KeyShare, signers []mpc.PartyID,
	stores map[mpc.PartyID]mpc.PresignStore, id mpc.PresignatureID, digest []byte, path mpc.Path) map[mpc.PartyID]*mpc.Session[*mpc.Signature] {
	t.Helper()
	sid := sessionID(t)
	ss, err := mpctest.Start(signers, func(p mpc.PartyID) (*mpc.Session[*mpc.Signature], error) {
		return e.PresignOnline(context.Background(),
			mpc.Params{SessionID: sid, Self: p, Parties: signers, Threshold: shares[p].Threshold()},
			mpc.SignInput{Share: shares[p], Digest: digest, Path: path}, stores[p], id)
	})
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// startSign creates full signing sessions of every signer.
func startSign(t testing.TB, e *mpc.Engine, shares map[mpc.PartyID]*mpc.KeyShare, signers []mpc.PartyID,
	digest []byte, path mpc.Path) map[mpc.PartyID]*mpc.Session[*mpc.Signature] {
	t.Helper()
	sid := sessionID(t)
	ss, err := mpctest.Start(signers, func(p mpc.PartyID) (*mpc.Session[*mpc.Signature], error) {
		return e.Sign(mpc.Params{SessionID: sid, Self: p, Parties: signers, Threshold: shares[p].Threshold()},
			mpc.SignInput{Share: shares[p], Digest: digest, Path: path})
	})
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// signatureOf runs signing sessions and returns the signature, checking that
// every signer produced the same one.
func signatureOf(t testing.TB, ss map[mpc.PartyID]*mpc.Session[*mpc.Signature]) *mpc.Signature {
	t.Helper()
	requireSuccess(t, run(t, mpctest.Machines(ss), mpctest.Options{}))
	var sig *mpc.Signature
	for id, s := range results(t, ss) {
		if sig != nil && *s != *sig {
			t.Fatalf("party %s produced a different signature", id)
		}
		sig = s
	}
	return sig
}

// verifyIndependently checks sig with decred's secp256k1 alone.
func verifyIndependently(t testing.TB, pubKey, digest []byte, sig *mpc.Signature) {
	t.Helper()
	pub, err := secp256k1.ParsePubKey(pubKey)
	if err != nil {
		t.Fatalf("parse public key: %v", err)
	}
	var r, s secp256k1.ModNScalar
	if r.SetBytes(&sig.R) != 0 || s.SetBytes(&sig.S) != 0 {
		t.Fatal("signature values overflow the group order")
	}
	if s.IsOverHalfOrder() {
		t.Error("signature is not in low-S form")
	}
	if !ecdsa.NewSignature(&r, &s).Verify(digest, pub) {
		t.Fatal("signature does not verify under decred's secp256k1")
	}
	// The recovery ID must recover the same key.
	compact := make([]byte, 65)
	compact[0] = 27 + 4 + sig.RecoveryID // compressed key
	copy(compact[1:], sig.R[:])
	copy(compact[33:], sig.S[:])
	rec, _, err := ecdsa.RecoverCompact(compact, digest)
	if err != nil {
		t.Fatalf("recover public key: %v", err)
	}
	if !rec.IsEqual(pub) {
		t.Fatal("recovery ID recovers another key")
	}
}

// sameKey checks that every share holds the same public key and chain code.
func sameKey(t testing.TB, shares map[mpc.PartyID]*mpc.KeyShare) (pub, chain []byte) {
	t.Helper()
	for id, k := range shares {
		if pub == nil {
			pub, chain = k.PublicKey(), k.ChainCode()
			continue
		}
		if !slices.Equal(pub, k.PublicKey()) || !slices.Equal(chain, k.ChainCode()) {
			t.Fatalf("party %s holds another public key or chain code", id)
		}
	}
	return pub, chain
}

func requireErrorIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}
