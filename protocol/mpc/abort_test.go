package mpc_test

import (
	"errors"
	"slices"
	"testing"

	pb "github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/protocol/mpc/internal/mpctest"
	"google.golang.org/protobuf/proto"
)

// corruptFrom returns a tamper function that flips the last payload byte of
// the first message from sender in round (to any recipient), keeping the
// CBOR well formed so that the message reaches the protocol.
func corruptFrom(sender mpc.PartyID, round uint32, direct bool) func(mpc.PartyID, *pb.MpcEnvelope) *pb.MpcEnvelope {
	done := false
	return func(_ mpc.PartyID, env *pb.MpcEnvelope) *pb.MpcEnvelope {
		if done || mpc.PartyID(env.GetFrom()) != sender || env.GetRound() != round || env.GetBroadcast() == direct {
			return env
		}
		done = true
		bad := proto.Clone(env).(*pb.MpcEnvelope)
		bad.Payload = slices.Clone(bad.Payload)
		bad.Payload[len(bad.Payload)-1] ^= 0x01
		return bad
	}
}

func requireAbortBy(t *testing.T, err error, culprit mpc.PartyID) {
	t.Helper()
	var ab *mpc.AbortError
	if !errors.As(err, &ab) {
		t.Fatalf("got %v (%T), want an *mpc.AbortError", err, err)
	}
	if ab.Party != culprit {
		t.Fatalf("abort names %q, want %q (%v)", ab.Party, culprit, err)
	}
}

// TestCorruptedMessageNamesSender corrupts one party's message and checks
// that the receiver's error names that party.
func TestCorruptedMessageNamesSender(t *testing.T) {
	e := newEngine(t)

	t.Run("online signature share", func(t *testing.T) {
		fx := loadFixture(t, "3of3")
		stores, id, signers := fixtureStores(t, fx, 0)
		ss := startOnline(t, e, fx.Shares, signers, stores, id, digestOf("corrupt online"), nil)
		out := run(t, mpctest.Machines(ss), mpctest.Options{Tamper: corruptFrom("c", 8, false)})
		// Whoever received the corrupted share blames c; c itself saw only
		// good shares, unless an abort notice reached it first.
		blamed := false
		for p, o := range out {
			if p == "c" {
				continue
			}
			var ab *mpc.AbortError
			if errors.As(o.Err, &ab) {
				requireAbortBy(t, o.Err, "c")
				blamed = true
			}
		}
		if !blamed {
			t.Fatalf("no party blamed c: %v", outcomes(out))
		}
	})

	t.Run("online signature share for a derived key", func(t *testing.T) {
		// The online round signs for m/44/60/0/0/3 with a master-key
		// presignature; a bad share must still be traced to its sender.
		fx := loadFixture(t, "3of3")
		stores, id, signers := fixtureStores(t, fx, 0)
		ss := startOnline(t, e, fx.Shares, signers, stores, id, digestOf("corrupt derived online"), mpc.Path{44, 60, 0, 0, 3})
		out := run(t, mpctest.Machines(ss), mpctest.Options{Tamper: corruptFrom("b", 8, false)})
		blamed := false
		for p, o := range out {
			if p == "b" {
				continue
			}
			var ab *mpc.AbortError
			if errors.As(o.Err, &ab) {
				requireAbortBy(t, o.Err, "b")
				blamed = true
			}
		}
		if !blamed {
			t.Fatalf("no party blamed b: %v", outcomes(out))
		}
	})

	t.Run("presign proof", func(t *testing.T) {
		fx := loadFixture(t, "2of2")
		sid := sessionID(t)
		ss, err := mpctest.Start(fx.Parties, func(id mpc.PartyID) (*mpc.Session[*mpc.Presignature], error) {
			return e.Presign(mpc.Params{SessionID: sid, Self: id, Parties: fx.Parties, Threshold: fx.Threshold}, fx.Shares[id])
		})
		if err != nil {
			t.Fatal(err)
		}
		out := run(t, mpctest.Machines(ss), mpctest.Options{Tamper: corruptFrom("a", 2, true)})
		requireAbortBy(t, out["b"].Err, "a")
		// b's abort notice reaches a, which reports who ended the session
		// and whom b blamed.
		var peer *mpc.PeerAbortError
		if !errors.As(out["a"].Err, &peer) || peer.Party != "b" || !slices.Equal(peer.Culprits, []mpc.PartyID{"a"}) {
			t.Fatalf("a: got %v, want a *PeerAbortError from b blaming a", out["a"].Err)
		}
	})
}

func outcomes(out map[mpc.PartyID]*mpctest.Outcome) map[mpc.PartyID]error {
	m := make(map[mpc.PartyID]error, len(out))
	for id, o := range out {
		m[id] = o.Err
	}
	return m
}
