package mpc_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/protocol/mpc/internal/mpctest"
)

// TestRefresh refreshes the 2-of-2 key: the public key and chain code stay,
// new shares sign, presignatures from before the refresh are refused, and an
// old share mixed with a refreshed one cannot sign.
func TestRefresh(t *testing.T) {
	e := newEngine(t)
	fx := loadFixture(t, "2of2")
	parties := fx.Parties
	pub, chain := sameKey(t, fx.Shares)

	sid := sessionID(t)
	ss, err := mpctest.Start(parties, func(id mpc.PartyID) (*mpc.Session[*mpc.KeyShare], error) {
		return e.Refresh(mpc.Params{SessionID: sid, Self: id, Parties: parties, Threshold: fx.Threshold}, fx.Shares[id])
	})
	if err != nil {
		t.Fatal(err)
	}
	requireSuccess(t, run(t, mpctest.Machines(ss), mpctest.Options{}))
	fresh := results(t, ss)
	newPub, newChain := sameKey(t, fresh)
	if !slices.Equal(pub, newPub) || !slices.Equal(chain, newChain) {
		t.Fatal("refresh changed the public key or chain code")
	}
	for id := range fresh {
		if slices.Equal(fresh[id].Epoch(), fx.Shares[id].Epoch()) {
			t.Fatalf("party %s: refresh kept the epoch", id)
		}
	}

	t.Run("refreshed shares sign", func(t *testing.T) {
		digest := digestOf("after refresh")
		sig := signatureOf(t, startSign(t, e, fresh, parties, digest, nil))
		verifyIndependently(t, pub, digest, sig)
	})

	t.Run("old presignature refused", func(t *testing.T) {
		stores, id, signers := fixtureStores(t, fx, 0)
		_, err := e.PresignOnline(context.Background(),
			mpc.Params{SessionID: sessionID(t), Self: "a", Parties: signers, Threshold: fx.Threshold},
			mpc.SignInput{Share: fresh["a"], Digest: digestOf("x")}, stores["a"], id)
		requireErrorIs(t, err, mpc.ErrPresignatureMismatch)
	})

	t.Run("old share mixed with refreshed fails", func(t *testing.T) {
		mixed := map[mpc.PartyID]*mpc.KeyShare{"a": fx.Shares["a"], "b": fresh["b"]}
		out := run(t, mpctest.Machines(startSign(t, e, mixed, parties, digestOf("mixed"), nil)), mpctest.Options{})
		wrongSession := false
		for id, o := range out {
			if o.Err == nil {
				t.Fatalf("party %s signed with a mix of old and refreshed shares", id)
			}
			for _, r := range o.Rejected {
				wrongSession = wrongSession || errors.Is(r, mpc.ErrWrongSession)
			}
		}
		// The parties' transcripts differ (each holds other public data), so
		// the engine refuses the other's messages before the library sees
		// them.
		if !wrongSession {
			t.Fatal("no party reported ErrWrongSession")
		}
	})
}
