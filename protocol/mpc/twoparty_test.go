package mpc_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/protocol/mpc/internal/mpctest"
)

// twoPartySetup runs the two-party setup from the 2-of-2 fixture's CMP
// shares.
func twoPartySetup(t testing.TB, e *mpc.Engine, fx *mpctest.Fixture) map[mpc.PartyID]*mpc.TwoPartyShare {
	t.Helper()
	sid := sessionID(t)
	ss, err := mpctest.Start(fx.Parties, func(id mpc.PartyID) (*mpc.Session[*mpc.TwoPartyShare], error) {
		return e.TwoPartySetup(mpc.Params{SessionID: sid, Self: id, Parties: fx.Parties, Threshold: 1}, fx.Shares[id])
	})
	if err != nil {
		t.Fatal(err)
	}
	requireSuccess(t, run(t, mpctest.Machines(ss), mpctest.Options{}))
	return results(t, ss)
}

func startTwoPartySign(t testing.TB, e *mpc.Engine, shares map[mpc.PartyID]*mpc.TwoPartyShare, parties []mpc.PartyID, digest []byte, path mpc.Path) map[mpc.PartyID]*mpc.Session[*mpc.Signature] {
	t.Helper()
	sid := sessionID(t)
	ss, err := mpctest.Start(parties, func(id mpc.PartyID) (*mpc.Session[*mpc.Signature], error) {
		return e.TwoPartySign(mpc.Params{SessionID: sid, Self: id, Parties: parties, Threshold: 1}, shares[id], digest, path)
	})
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// TestTwoPartySameKey: the two-party form of the 2-of-2 fixture key has
// the CMP key's public key and chain code, signs on the master key and on
// derived paths with signatures an independent verifier accepts under the
// key BIP-32 derives, and the CMP shares go on signing as before.
func TestTwoPartySameKey(t *testing.T) {
	e := newEngine(t)
	fx := loadFixture(t, "2of2")
	pub, chain := sameKey(t, fx.Shares)
	shares := twoPartySetup(t, e, fx)
	for id, s := range shares {
		if s.Self() != id || !slices.Contains(fx.Parties, s.Peer()) || s.Peer() == id ||
			!slices.Equal(s.PublicKey(), pub) || !slices.Equal(s.ChainCode(), chain) {
			t.Fatalf("%s's two-party share: self %s peer %s, key %x chain %x; want the CMP key %x chain %x",
				id, s.Self(), s.Peer(), s.PublicKey(), s.ChainCode(), pub, chain)
		}
	}
	for _, path := range []mpc.Path{nil, {0}, {44, 60, 0, 0, 7}} {
		digest := digestOf(fmt.Sprintf("two-party %v", path))
		sig := signatureOf(t, startTwoPartySign(t, e, shares, fx.Parties, digest, path))
		derived, err := mpc.DerivePublicKey(pub, chain, path)
		if err != nil {
			t.Fatal(err)
		}
		verifyIndependently(t, derived, digest, sig)
	}
	digest := digestOf("cmp after the two-party setup")
	verifyIndependently(t, pub, digest, signatureOf(t, startSign(t, e, fx.Shares, fx.Parties, digest, nil)))
}

// TestTwoPartyConcurrentSignings: one two-party share signs several digests
// at once, each signing in its own session; every signature verifies. (The
// signings only read the share's OT setup; run under -race, this also
// checks that they share no mutable state.)
func TestTwoPartyConcurrentSignings(t *testing.T) {
	e := newEngine(t)
	fx := loadFixture(t, "2of2")
	pub, _ := sameKey(t, fx.Shares)
	shares := twoPartySetup(t, e, fx)
	const n = 4
	sigs := make([]*mpc.Signature, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ss := startTwoPartySign(t, e, shares, fx.Parties, digestOf(fmt.Sprint("concurrent ", i)), nil)
			out := run(t, mpctest.Machines(ss), mpctest.Options{})
			for id, o := range out {
				if o.Err != nil {
					t.Errorf("signing %d, party %s: %v", i, id, o.Err)
					return
				}
			}
			for _, s := range ss {
				sig, err := s.Result()
				if err != nil {
					t.Errorf("signing %d: %v", i, err)
					return
				}
				sigs[i] = sig
			}
		}()
	}
	wg.Wait()
	for i, sig := range sigs {
		if sig == nil {
			t.Fatalf("signing %d gave no signature", i)
		}
		verifyIndependently(t, pub, digestOf(fmt.Sprint("concurrent ", i)), sig)
	}
}

// TestTwoPartyBadInput: the two-party form is refused for a key that is
// not 2-of-2, and a signing with another party, threshold or digest size is
// refused before anything is sent.
func TestTwoPartyBadInput(t *testing.T) {
	e := newEngine(t)
	fx3 := loadFixture(t, "2of3")
	two := fx3.Parties[:2]
	_, err := e.TwoPartySetup(mpc.Params{SessionID: sessionID(t), Self: two[0], Parties: two, Threshold: 1}, fx3.Shares[two[0]])
	requireErrorIs(t, err, mpc.ErrInvalidParams)

	fx := loadFixture(t, "2of2")
	shares := twoPartySetup(t, e, fx)
	self := fx.Parties[0]
	for name, p := range map[string]mpc.Params{
		"another party":   {SessionID: sessionID(t), Self: self, Parties: []mpc.PartyID{self, "zz"}, Threshold: 1},
		"threshold 0":     {SessionID: sessionID(t), Self: self, Parties: fx.Parties, Threshold: 0},
		"empty session":   {Self: self, Parties: fx.Parties, Threshold: 1},
		"self not a peer": {SessionID: sessionID(t), Self: fx.Parties[1], Parties: fx.Parties, Threshold: 1},
	} {
		if _, err := e.TwoPartySign(p, shares[self], digestOf("x"), nil); !errors.Is(err, mpc.ErrInvalidParams) {
			t.Errorf("%s: got %v, want ErrInvalidParams", name, err)
		}
	}
	p := mpc.Params{SessionID: sessionID(t), Self: self, Parties: fx.Parties, Threshold: 1}
	if _, err := e.TwoPartySign(p, shares[self], []byte("short"), nil); !errors.Is(err, mpc.ErrInvalidParams) {
		t.Errorf("a short digest: got %v, want ErrInvalidParams", err)
	}
}

// TestTwoPartyTamperedMessage: a two-party signing whose message from one
// party is altered on the way fails on the other, which names the sender as
// the culprit, and no party gets a signature. A retry in a new session
// signs the same digest.
func TestTwoPartyTamperedMessage(t *testing.T) {
	e := newEngine(t)
	fx := loadFixture(t, "2of2")
	pub, _ := sameKey(t, fx.Shares)
	shares := twoPartySetup(t, e, fx)
	digest := digestOf("tampered")
	for _, round := range []uint32{1, 2} {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			ss := startTwoPartySign(t, e, shares, fx.Parties, digest, nil)
			var victim, culprit mpc.PartyID
			out := run(t, mpctest.Machines(ss), mpctest.Options{Tamper: func(to mpc.PartyID, env *pb.MpcEnvelope) *pb.MpcEnvelope {
				if env.GetRound() != round || env.GetAbort() != nil || victim != "" {
					return env
				}
				victim, culprit = to, mpc.PartyID(env.GetFrom())
				bad := proto.Clone(env).(*pb.MpcEnvelope)
				bad.Payload = flipLastCBORByte(bad.Payload)
				return bad
			}})
			if victim == "" {
				t.Fatal("no message of the round to tamper with")
			}
			var ab *mpc.AbortError
			var rejected *mpc.MessageError
			err := out[victim].Err
			switch {
			case errors.As(err, &ab):
				if !slices.Contains(ab.Culprits, culprit) {
					t.Errorf("%s's abort names %v, not the sender %s", victim, ab.Culprits, culprit)
				}
			case len(out[victim].Rejected) > 0 && errors.As(out[victim].Rejected[0], &rejected):
				if rejected.Party != culprit {
					t.Errorf("%s rejected a message naming %s, not %s", victim, rejected.Party, culprit)
				}
			default:
				t.Fatalf("%s: error %v, rejected %v; want an abort or a rejection naming %s", victim, err, out[victim].Rejected, culprit)
			}
			for id, s := range ss {
				if sig, err := s.Result(); err == nil {
					t.Errorf("%s got a signature %v from a tampered session", id, sig)
				}
			}
		})
	}
	t.Run("transcript of the first message", func(t *testing.T) {
		// The second party takes the transcript from the first message;
		// its handler then drops the message, and the session ends at once
		// naming the sender, rather than waiting for its timeout.
		ss := startTwoPartySign(t, e, shares, fx.Parties, digest, nil)
		first := fx.Parties[0]
		out := run(t, mpctest.Machines(ss), mpctest.Options{Tamper: func(to mpc.PartyID, env *pb.MpcEnvelope) *pb.MpcEnvelope {
			if env.GetRound() != 1 {
				return env
			}
			bad := proto.Clone(env).(*pb.MpcEnvelope)
			bad.Ssid = flipLastCBORByte(bad.Ssid)
			return bad
		}})
		var ab *mpc.AbortError
		if second := fx.Parties[1]; !errors.As(out[second].Err, &ab) || !slices.Equal(ab.Culprits, []mpc.PartyID{first}) {
			t.Fatalf("%s: %v, want an abort naming %s", second, out[second].Err, first)
		}
	})
	verifyIndependently(t, pub, digest, signatureOf(t, startTwoPartySign(t, e, shares, fx.Parties, digest, nil)))
}

// flipLastCBORByte changes the last byte of b; a CBOR payload stays
// well-formed (those of these rounds end in a byte string or a scalar).
func flipLastCBORByte(b []byte) []byte {
	out := slices.Clone(b)
	out[len(out)-1] ^= 1
	return out
}
