package mpc_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/protocol/mpc/internal/mpctest"
)

// TestKeygen runs a real 2-of-2 key generation (the cheapest) and signs with
// the new key.
func TestKeygen(t *testing.T) {
	e := newEngine(t)
	parties := []mpc.PartyID{"alice", "bob"}
	shares := keygen(t, e, parties, 1)
	pub, chain := sameKey(t, shares)
	if len(pub) != 33 || (pub[0] != 2 && pub[0] != 3) || len(chain) != 32 {
		t.Fatalf("public key %x / chain code %x are malformed", pub, chain)
	}
	for id, k := range shares {
		if k.Self() != id || k.Threshold() != 1 || !slices.Equal(k.Parties(), parties) {
			t.Fatalf("share of %s: self %s threshold %d parties %v", id, k.Self(), k.Threshold(), k.Parties())
		}
		b, err := k.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := mpc.UnmarshalKeyShare(b)
		if err != nil {
			t.Fatalf("round trip of %s's share: %v", id, err)
		}
		again, err := back.MarshalBinary()
		if err != nil || !slices.Equal(b, again) {
			t.Fatalf("share of %s does not round-trip", id)
		}
		shares[id] = back // sign with the decoded shares
	}
	digest := digestOf("keygen")
	sig := signatureOf(t, startSign(t, e, shares, parties, digest, nil))
	verifyIndependently(t, pub, digest, sig)
}

// TestSign runs full signing (no presignature) once per setup.
func TestSign(t *testing.T) {
	for _, tc := range []struct {
		setup   string
		signers []mpc.PartyID
	}{
		{"2of2", []mpc.PartyID{"a", "b"}},
		{"2of3", []mpc.PartyID{"b", "c"}},
		{"3of3", []mpc.PartyID{"a", "b", "c"}},
	} {
		t.Run(tc.setup, func(t *testing.T) {
			e := newEngine(t)
			fx := loadFixture(t, tc.setup)
			pub, _ := sameKey(t, fx.Shares)
			digest := digestOf("full sign " + tc.setup)
			sig := signatureOf(t, startSign(t, e, fx.Shares, tc.signers, digest, nil))
			verifyIndependently(t, pub, digest, sig)
		})
	}
}

// TestPresignOnline runs a real presign and then the online round for every
// setup, and for 2-of-3 with every signer subset of two.
func TestPresignOnline(t *testing.T) {
	for _, tc := range []struct {
		setup   string
		signers []mpc.PartyID
	}{
		{"2of2", []mpc.PartyID{"a", "b"}},
		{"2of3", []mpc.PartyID{"a", "b"}},
		{"2of3", []mpc.PartyID{"a", "c"}},
		{"2of3", []mpc.PartyID{"b", "c"}},
		{"3of3", []mpc.PartyID{"a", "b", "c"}},
	} {
		t.Run(tc.setup+"/"+signerNames(tc.signers), func(t *testing.T) {
			e := newEngine(t)
			fx := loadFixture(t, tc.setup)
			pub, _ := sameKey(t, fx.Shares)
			stores := memStores(tc.signers)
			id := presign(t, e, fx.Shares, tc.signers, stores)

			digest := digestOf("online " + tc.setup)
			sig := signatureOf(t, startOnline(t, e, fx.Shares, tc.signers, stores, id, digest, nil))
			verifyIndependently(t, pub, digest, sig)

			// The presignature is spent: no party can start another online
			// round with it.
			for _, p := range tc.signers {
				_, err := e.PresignOnline(context.Background(),
					mpc.Params{SessionID: sessionID(t), Self: p, Parties: tc.signers, Threshold: fx.Threshold},
					mpc.SignInput{Share: fx.Shares[p], Digest: digestOf("again")}, stores[p], id)
				requireErrorIs(t, err, mpc.ErrPresignatureUsed)
			}
		})
	}
}

// TestPresignatureMismatch checks that a presignature is refused, and stays
// spent, when the session disagrees with it.
func TestPresignatureMismatch(t *testing.T) {
	e := newEngine(t)
	fx2 := loadFixture(t, "2of2")
	fx23 := loadFixture(t, "2of3")
	digest := digestOf("mismatch")
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		share *mpc.KeyShare
		self  mpc.PartyID
	}{
		{"other key", fx23.Shares["a"], "a"},
		{"other party", fx2.Shares["b"], "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stores, id, signers := fixtureStores(t, fx2, 0)
			_, err := e.PresignOnline(ctx,
				mpc.Params{SessionID: sessionID(t), Self: tc.self, Parties: signers, Threshold: tc.share.Threshold()},
				mpc.SignInput{Share: tc.share, Digest: digest}, stores["a"], id)
			requireErrorIs(t, err, mpc.ErrPresignatureMismatch)
			_, err = stores["a"].Take(ctx, id)
			requireErrorIs(t, err, mpc.ErrPresignatureUsed)
		})
	}
}

func signerNames(ids []mpc.PartyID) string {
	var b []byte
	for _, id := range ids {
		b = append(b, id...)
	}
	return string(b)
}

// TestConcurrentSessionsShareKeyShare runs several online signings at once
// with the same key shares (as a node does), to check that sessions do not
// share mutable library state. Run it under -race to see data races.
func TestConcurrentSessionsShareKeyShare(t *testing.T) {
	e := newEngine(t)
	fx := loadFixture(t, "3of3")
	pub, chain := sameKey(t, fx.Shares)
	const n = 6
	sets := mpc.DealtPresignatures(fx.Shares, fx.Parties, n)
	stores := memStores(fx.Parties)
	for _, set := range sets {
		for p, pre := range set {
			if err := stores[p].Put(context.Background(), pre); err != nil {
				t.Fatal(err)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, set := range sets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := mpc.Path{uint32(i % 2)}
			digest := digestOf(fmt.Sprint("concurrent ", i))
			ss, err := mpctest.Start(fx.Parties, func(p mpc.PartyID) (*mpc.Session[*mpc.Signature], error) {
				return e.PresignOnline(context.Background(),
					mpc.Params{SessionID: []byte(fmt.Sprint("concurrent-", i)), Self: p, Parties: fx.Parties, Threshold: fx.Threshold},
					mpc.SignInput{Share: fx.Shares[p], Digest: digest, Path: path}, stores[p], set[p].ID())
			})
			if err != nil {
				errs <- err
				return
			}
			out, err := mpctest.Run(context.Background(), mpctest.Machines(ss), mpctest.Options{})
			if err != nil {
				errs <- err
				return
			}
			for p, o := range out {
				if o.Err != nil {
					errs <- fmt.Errorf("session %d party %s: %w", i, p, o.Err)
					return
				}
			}
			sig, err := ss["a"].Result()
			if err != nil {
				errs <- err
				return
			}
			want, err := mpc.DerivePublicKey(pub, chain, path)
			if err != nil || !sig.Verify(want, digest) {
				errs <- fmt.Errorf("session %d: signature does not verify (%v)", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
