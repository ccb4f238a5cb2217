package mpc_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	pb "github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"google.golang.org/protobuf/proto"
)

func requireRejected(t *testing.T, err error, sentinel error, party mpc.PartyID) {
	t.Helper()
	var me *mpc.MessageError
	if !errors.As(err, &me) {
		t.Fatalf("got %v (%T), want a *mpc.MessageError", err, err)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("got %v, want %v", err, sentinel)
	}
	if me.Party != party {
		t.Fatalf("rejection names %q, want %q", me.Party, party)
	}
}

func onlyMessage(t *testing.T, envs []*pb.MpcEnvelope) *pb.MpcEnvelope {
	t.Helper()
	if len(envs) != 1 {
		t.Fatalf("got %d outgoing envelopes, want 1", len(envs))
	}
	return envs[0]
}

// TestAcceptRejects feeds one session bad variants of a genuine message:
// each is refused with a typed error naming the sender and changes nothing,
// and the genuine message still completes the session.
func TestAcceptRejects(t *testing.T) {
	e := newEngine(t)
	fx := loadFixture(t, "2of2")
	stores, id, signers := fixtureStores(t, fx, 1)
	digest := digestOf("accept")
	ss := startOnline(t, e, fx.Shares, signers, stores, id, digest, nil)
	a, b := ss["a"], ss["b"]
	_ = onlyMessage(t, a.Outgoing())
	good := onlyMessage(t, b.Outgoing())

	mod := func(f func(*pb.MpcEnvelope)) *pb.MpcEnvelope {
		c := proto.Clone(good).(*pb.MpcEnvelope)
		f(c)
		return c
	}
	for _, tc := range []struct {
		name  string
		env   *pb.MpcEnvelope
		want  error
		party mpc.PartyID
	}{
		{"nil", nil, mpc.ErrMalformed, ""},
		{"version", mod(func(e *pb.MpcEnvelope) { e.Version = mpc.EnvelopeVersion + 1 }), mpc.ErrMalformed, "b"},
		{"version 1 (online rounds without re-randomization)", mod(func(e *pb.MpcEnvelope) { e.Version = 1 }), mpc.ErrMalformed, "b"},
		{"wrong session", mod(func(e *pb.MpcEnvelope) { e.SessionId = []byte("other") }), mpc.ErrWrongSession, "b"},
		{"wrong protocol", mod(func(e *pb.MpcEnvelope) { e.Protocol = pb.MpcProtocol_MPC_PROTOCOL_SIGN }), mpc.ErrWrongSession, "b"},
		{"unknown protocol", mod(func(e *pb.MpcEnvelope) { e.Protocol = 99 }), mpc.ErrMalformed, "b"},
		{"unknown party", mod(func(e *pb.MpcEnvelope) { e.From = "mallory" }), mpc.ErrUnknownParty, "mallory"},
		{"self as sender", mod(func(e *pb.MpcEnvelope) { e.From = "a" }), mpc.ErrUnknownParty, "a"},
		{"bad sender ID", mod(func(e *pb.MpcEnvelope) { e.From = "b\x00" }), mpc.ErrMalformed, "b\x00"},
		{"other transcript", mod(func(e *pb.MpcEnvelope) { e.Ssid = slices.Repeat([]byte{7}, 64) }), mpc.ErrWrongSession, "b"},
		{"short SSID", mod(func(e *pb.MpcEnvelope) { e.Ssid = e.Ssid[:10] }), mpc.ErrMalformed, "b"},
		{"misrouted", mod(func(e *pb.MpcEnvelope) { e.Broadcast, e.To = false, "c" }), mpc.ErrMisrouted, "b"},
		{"broadcast with recipient", mod(func(e *pb.MpcEnvelope) { e.To = "a" }), mpc.ErrMalformed, "b"},
		{"direct where protocol broadcasts", mod(func(e *pb.MpcEnvelope) { e.Broadcast, e.To = false, "a" }), mpc.ErrMalformed, "b"},
		{"no such round", mod(func(e *pb.MpcEnvelope) { e.Round = 7 }), mpc.ErrMalformed, "b"},
		{"round zero", mod(func(e *pb.MpcEnvelope) { e.Round = 0 }), mpc.ErrMalformed, "b"},
		{"oversize payload", mod(func(e *pb.MpcEnvelope) { e.Payload = make([]byte, mpc.DefaultConfig().MaxPayloadBytes+1) }), mpc.ErrOversize, "b"},
		{"garbage payload", mod(func(e *pb.MpcEnvelope) { e.Payload = []byte{0xff, 0x00, 0x13} }), mpc.ErrMalformed, "b"},
		{"truncated payload", mod(func(e *pb.MpcEnvelope) { e.Payload = e.Payload[:len(e.Payload)-1] }), mpc.ErrMalformed, "b"},
		{"empty payload", mod(func(e *pb.MpcEnvelope) { e.Payload = nil }), mpc.ErrMalformed, "b"},
		{"bad echo hash", mod(func(e *pb.MpcEnvelope) { e.BroadcastVerification = []byte{1, 2, 3} }), mpc.ErrMalformed, "b"},
		{"unknown field", mod(func(e *pb.MpcEnvelope) { e.ProtoReflect().SetUnknown([]byte{0xf8, 0x01, 0x01}) }), mpc.ErrMalformed, "b"},
		{"abort notice with payload", mod(func(e *pb.MpcEnvelope) { e.Round, e.Abort = 0, &pb.MpcAbort{} }), mpc.ErrMalformed, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireRejected(t, a.Accept(tc.env), tc.want, tc.party)
			if a.Done() || len(a.Outgoing()) != 0 {
				t.Fatal("a rejected message changed the session")
			}
		})
	}

	if err := a.Accept(good); err != nil {
		t.Fatalf("genuine message: %v", err)
	}
	sig, err := a.Result()
	if err != nil {
		t.Fatal(err)
	}
	verifyIndependently(t, fx.Shares["a"].PublicKey(), digest, sig)
	requireRejected(t, a.Accept(good), mpc.ErrSessionDone, "b")
	b.Close()
}

// TestAcceptRoundWindow checks duplicates and the window of open rounds on a
// multi-round protocol (full signing).
func TestAcceptRoundWindow(t *testing.T) {
	e := newEngine(t)
	fx := loadFixture(t, "2of2")
	ss := startSign(t, e, fx.Shares, fx.Parties, digestOf("window"), nil)
	a, b := ss["a"], ss["b"]
	defer a.Close()
	defer b.Close()
	_ = a.Outgoing()       // a's own round-2 messages
	round2 := b.Outgoing() // b's round-2 broadcast and direct message
	if len(round2) != 2 {
		t.Fatalf("b sent %d round-2 messages, want 2", len(round2))
	}
	ahead := proto.Clone(round2[0]).(*pb.MpcEnvelope)
	ahead.Round = 4
	requireRejected(t, a.Accept(ahead), mpc.ErrRoundNotOpen, "b")

	if err := a.Accept(round2[0]); err != nil {
		t.Fatal(err)
	}
	requireRejected(t, a.Accept(round2[0]), mpc.ErrDuplicate, "b")
	if err := a.Accept(round2[1]); err != nil {
		t.Fatal(err)
	}
	// a has all of round 2 and moved on: round 2 is closed.
	if got := a.Outgoing(); len(got) == 0 || got[0].GetRound() != 3 {
		t.Fatalf("a did not move to round 3 (%d envelopes queued)", len(got))
	}
	requireRejected(t, a.Accept(round2[1]), mpc.ErrRoundClosed, "b")
}

// TestPeerAbortNotice checks that a peer's abort notice ends the session.
func TestPeerAbortNotice(t *testing.T) {
	e := newEngine(t)
	fx := loadFixture(t, "2of2")
	stores, id, signers := fixtureStores(t, fx, 2)
	ss := startOnline(t, e, fx.Shares, signers, stores, id, digestOf("peer abort"), nil)
	a, b := ss["a"], ss["b"]
	genuine := onlyMessage(t, b.Outgoing())
	b.Close()
	notice := &pb.MpcEnvelope{
		Version: mpc.EnvelopeVersion, SessionId: genuine.SessionId, Protocol: genuine.Protocol,
		From: "b", Broadcast: true, Ssid: genuine.Ssid, Abort: &pb.MpcAbort{Culprits: []string{"c"}},
	}
	err := a.Accept(notice)
	var peer *mpc.PeerAbortError
	if !errors.As(err, &peer) || peer.Party != "b" || !slices.Equal(peer.Culprits, []mpc.PartyID{"c"}) {
		t.Fatalf("got %v, want a *PeerAbortError from b", err)
	}
	if !a.Done() {
		t.Fatal("session still running after an abort notice")
	}
	if _, err := a.Result(); !errors.As(err, &peer) {
		t.Fatalf("Result: %v", err)
	}
	if out := a.Outgoing(); len(out) != 1 { // a's own round-8 message
		t.Fatalf("a queued %d envelopes; a peer's abort must not echo another notice", len(out))
	}
}

// TestSessionLifecycle checks Result before the end, Close, and use after
// Close.
func TestSessionLifecycle(t *testing.T) {
	e := newEngine(t)
	fx := loadFixture(t, "2of2")
	ss := startSign(t, e, fx.Shares, fx.Parties, digestOf("lifecycle"), nil)
	a := ss["a"]
	ss["b"].Close()
	if _, err := a.Result(); !errors.Is(err, mpc.ErrNotDone) {
		t.Fatalf("Result while running: %v", err)
	}
	if a.Done() || a.Err() != nil {
		t.Fatal("session done before it ran")
	}
	if a.Protocol() != mpc.ProtocolSign || a.Self() != "a" || !slices.Equal(a.Parties(), fx.Parties) || len(a.SessionID()) == 0 {
		t.Fatal("session reports the wrong identity")
	}
	a.Close()
	a.Close()
	if _, err := a.Result(); !errors.Is(err, mpc.ErrClosed) {
		t.Fatalf("Result after Close: %v", err)
	}
	requireRejected(t, a.Accept(&pb.MpcEnvelope{}), mpc.ErrSessionDone, "")
}

// TestConstructorsRejectBadParams checks the session constructors' argument
// checks; none of these cases may take a presignature.
func TestConstructorsRejectBadParams(t *testing.T) {
	e := newEngine(t)
	fx := loadFixture(t, "2of3")
	share := fx.Shares["a"]
	sid := sessionID(t)
	ok := mpc.Params{SessionID: sid, Self: "a", Parties: []mpc.PartyID{"a", "b"}, Threshold: 1}
	in := mpc.SignInput{Share: share, Digest: digestOf("params")}
	with := func(f func(*mpc.Params, *mpc.SignInput)) (mpc.Params, mpc.SignInput) {
		p, i := ok, in
		p.Parties = slices.Clone(ok.Parties)
		f(&p, &i)
		return p, i
	}
	for _, tc := range []struct {
		name string
		f    func(*mpc.Params, *mpc.SignInput)
		want error
	}{
		{"empty session ID", func(p *mpc.Params, _ *mpc.SignInput) { p.SessionID = nil }, mpc.ErrInvalidParams},
		{"long session ID", func(p *mpc.Params, _ *mpc.SignInput) { p.SessionID = make([]byte, 65) }, mpc.ErrInvalidParams},
		{"self not a party", func(p *mpc.Params, _ *mpc.SignInput) { p.Parties = []mpc.PartyID{"b", "c"} }, mpc.ErrInvalidParams},
		{"too few signers", func(p *mpc.Params, _ *mpc.SignInput) { p.Parties = []mpc.PartyID{"a"} }, mpc.ErrInvalidParams},
		{"duplicate party", func(p *mpc.Params, _ *mpc.SignInput) { p.Parties = []mpc.PartyID{"a", "a"} }, mpc.ErrInvalidParams},
		{"stranger", func(p *mpc.Params, _ *mpc.SignInput) { p.Parties = []mpc.PartyID{"a", "z"} }, mpc.ErrInvalidParams},
		{"wrong threshold", func(p *mpc.Params, _ *mpc.SignInput) { p.Threshold = 2 }, mpc.ErrInvalidParams},
		{"wrong self", func(p *mpc.Params, _ *mpc.SignInput) { p.Self = "b" }, mpc.ErrInvalidParams},
		{"short digest", func(_ *mpc.Params, i *mpc.SignInput) { i.Digest = i.Digest[:31] }, mpc.ErrInvalidParams},
		{"hardened path", func(_ *mpc.Params, i *mpc.SignInput) { i.Path = mpc.Path{1 << 31} }, mpc.ErrInvalidPath},
		{"no share", func(_ *mpc.Params, i *mpc.SignInput) { i.Share = nil }, mpc.ErrInvalidParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, i := with(tc.f)
			if _, err := e.Sign(p, i); !errors.Is(err, tc.want) {
				t.Fatalf("Sign: got %v, want %v", err, tc.want)
			}
			store := mpc.NewMemPresignStore()
			pre := fx3Presignature(t)
			if err := store.Put(context.Background(), pre); err != nil {
				t.Fatal(err)
			}
			if _, err := e.PresignOnline(context.Background(), p, i, store, pre.ID()); !errors.Is(err, tc.want) {
				t.Fatalf("PresignOnline: got %v, want %v", err, tc.want)
			}
			if store.Len() != 1 {
				t.Fatal("a refused PresignOnline took the presignature")
			}
		})
	}
	if _, err := e.Keygen(mpc.Params{SessionID: sid, Self: "a", Parties: []mpc.PartyID{"a", "b"}, Threshold: 2}); !errors.Is(err, mpc.ErrInvalidParams) {
		t.Fatalf("Keygen with threshold 2 of 2: %v", err)
	}
	if _, err := e.Refresh(mpc.Params{SessionID: sid, Self: "a", Parties: []mpc.PartyID{"a", "b"}, Threshold: 1}, share); !errors.Is(err, mpc.ErrInvalidParams) {
		t.Fatalf("Refresh without every party: %v", err)
	}
}

// fx3Presignature returns a presignature that matches none of the 2-of-3
// sessions above; it only has to sit in the store.
func fx3Presignature(t *testing.T) *mpc.Presignature {
	t.Helper()
	for _, p := range loadFixture(t, "3of3").Presignatures[0] {
		return p
	}
	t.Fatal("3of3 fixture has no presignature")
	return nil
}

func TestConfigValidate(t *testing.T) {
	if err := mpc.DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, n := range []int{0, 10, mpc.MaxEnvelopeSize + 1} {
		bad := mpc.Config{MaxPayloadBytes: n}
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "MaxPayloadBytes") {
			t.Errorf("MaxPayloadBytes %d: Validate = %v, want an error about MaxPayloadBytes", n, err)
		}
		if _, err := mpc.New(bad); err == nil {
			t.Errorf("MaxPayloadBytes %d: New accepted an invalid config", n)
		}
	}
}
