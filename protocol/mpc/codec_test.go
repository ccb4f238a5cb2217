package mpc_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"slices"
	"testing"

	pb "github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/protocol/mpc/internal/synthetic"
	"github.com/coterie-mpc/coterie/protocol/mpc/internal/wire"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func sampleEnvelope() *pb.MpcEnvelope {
	return &pb.MpcEnvelope{
		Version:               mpc.EnvelopeVersion,
		SessionId:             []byte("session-1"),
		Protocol:              pb.MpcProtocol_MPC_PROTOCOL_PRESIGN,
		Round:                 3,
		From:                  "node-1",
		To:                    "cloud-2",
		Payload:               []byte{0xa1, 0x61, 0x41, 0x42, 0x01, 0x02}, // {"A": h'0102'}
		BroadcastVerification: bytes.Repeat([]byte{9}, 64),
		Ssid:                  bytes.Repeat([]byte{7}, 64),
	}
}

func sampleAbortNotice() *pb.MpcEnvelope {
	return &pb.MpcEnvelope{
		Version: mpc.EnvelopeVersion, SessionId: []byte("session-1"), Protocol: pb.MpcProtocol_MPC_PROTOCOL_SIGN,
		From: "cloud-2", Broadcast: true, Abort: &pb.MpcAbort{Culprits: []string{"node-1"}},
	}
}

func mustEncode(t testing.TB, env *pb.MpcEnvelope) []byte {
	t.Helper()
	b, err := mpc.EncodeEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeEnvelope(t *testing.T) {
	valid := mustEncode(t, sampleEnvelope())
	mod := func(f func(*pb.MpcEnvelope)) []byte {
		e := sampleEnvelope()
		f(e)
		return mustEncode(t, e)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error // nil: valid
	}{
		{"valid", valid, nil},
		{"valid broadcast", mod(func(e *pb.MpcEnvelope) { e.To, e.Broadcast = "", true }), nil},
		{"valid abort notice", mustEncode(t, sampleAbortNotice()), nil},
		{"empty", nil, mpc.ErrMalformed},
		{"garbage", []byte("\xff\xff\xff\xff"), mpc.ErrMalformed},
		{"truncated", valid[:len(valid)-3], mpc.ErrMalformed},
		{"oversize", make([]byte, mpc.MaxEnvelopeSize+1), mpc.ErrOversize},
		{"unknown field", append(slices.Clone(valid), protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1)...), mpc.ErrMalformed},
		{"version 0", mod(func(e *pb.MpcEnvelope) { e.Version = 0 }), mpc.ErrMalformed},
		{"no session ID", mod(func(e *pb.MpcEnvelope) { e.SessionId = nil }), mpc.ErrMalformed},
		{"long session ID", mod(func(e *pb.MpcEnvelope) { e.SessionId = make([]byte, 65) }), mpc.ErrMalformed},
		{"unspecified protocol", mod(func(e *pb.MpcEnvelope) { e.Protocol = 0 }), mpc.ErrMalformed},
		{"empty sender", mod(func(e *pb.MpcEnvelope) { e.From = "" }), mpc.ErrMalformed},
		{"long sender", mod(func(e *pb.MpcEnvelope) { e.From = string(bytes.Repeat([]byte("x"), 33)) }), mpc.ErrMalformed},
		{"sender with space", mod(func(e *pb.MpcEnvelope) { e.From = "node 1" }), mpc.ErrMalformed},
		{"direct without recipient", mod(func(e *pb.MpcEnvelope) { e.To = "" }), mpc.ErrMalformed},
		{"to self", mod(func(e *pb.MpcEnvelope) { e.To = e.From }), mpc.ErrMalformed},
		{"broadcast with recipient", mod(func(e *pb.MpcEnvelope) { e.Broadcast = true }), mpc.ErrMalformed},
		{"round 0", mod(func(e *pb.MpcEnvelope) { e.Round = 0 }), mpc.ErrMalformed},
		{"no payload", mod(func(e *pb.MpcEnvelope) { e.Payload = nil }), mpc.ErrMalformed},
		{"no SSID", mod(func(e *pb.MpcEnvelope) { e.Ssid = nil }), mpc.ErrMalformed},
		{"short echo hash", mod(func(e *pb.MpcEnvelope) { e.BroadcastVerification = []byte{1} }), mpc.ErrMalformed},
		{"abort notice in round 3", mod(func(e *pb.MpcEnvelope) { e.Abort = &pb.MpcAbort{} }), mpc.ErrMalformed},
		{"abort notice blaming garbage", func() []byte {
			e := sampleAbortNotice()
			e.Abort.Culprits = []string{"\x00"}
			return mustEncode(t, e)
		}(), mpc.ErrMalformed},
		{"abort notice blaming too many", func() []byte {
			e := sampleAbortNotice()
			e.Abort.Culprits = slices.Repeat([]string{"x"}, mpc.MaxParties+1)
			return mustEncode(t, e)
		}(), mpc.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, err := mpc.DecodeEnvelope(tc.in)
			if tc.want != nil {
				if !errors.Is(err, tc.want) || env != nil {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if again := mustEncode(t, env); !bytes.Equal(again, tc.in) {
				t.Fatal("valid envelope does not round-trip")
			}
		})
	}
}

func syntheticRecord(t testing.TB) wire.Presignature {
	t.Helper()
	recs, err := synthetic.Presignature(rand.Reader, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	var rec wire.Presignature
	if err := wire.Unmarshal(recs["b"], &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestUnmarshalPresignature(t *testing.T) {
	base := syntheticRecord(t)
	enc := func(f func(*wire.Presignature)) []byte {
		r := base
		r.Signers = slices.Clone(base.Signers)
		r.RBar = slices.Clone(base.RBar)
		r.S = slices.Clone(base.S)
		f(&r)
		b, err := wire.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	valid := enc(func(*wire.Presignature) {})
	flip := func(b []byte) []byte { c := slices.Clone(b); c[len(c)-1] ^= 1; return c }
	other := syntheticRecord(t)
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"valid", valid, true},
		{"empty", nil, false},
		{"garbage", []byte{0xff, 0x00}, false},
		{"trailing byte", append(slices.Clone(valid), 0), false},
		{"truncated", valid[:len(valid)-1], false},
		{"oversize", make([]byte, mpc.MaxPresignatureSize+1), false},
		{"version 2", enc(func(r *wire.Presignature) { r.Version = 2 }), false},
		{"zero ID", enc(func(r *wire.Presignature) { r.ID = make([]byte, 32) }), false},
		{"short ID", enc(func(r *wire.Presignature) { r.ID = r.ID[:31] }), false},
		{"self not a signer", enc(func(r *wire.Presignature) { r.Self = "d" }), false},
		{"bad self", enc(func(r *wire.Presignature) { r.Self = "" }), false},
		{"unsorted signers", enc(func(r *wire.Presignature) { r.Signers[0], r.Signers[1] = r.Signers[1], r.Signers[0] }), false},
		{"duplicate signer", enc(func(r *wire.Presignature) { r.Signers[0] = r.Signers[1] }), false},
		{"missing commitment", enc(func(r *wire.Presignature) { r.S = r.S[:2] }), false},
		{"uncompressed point prefix", enc(func(r *wire.Presignature) { r.R = append([]byte{4}, r.R[1:]...) }), false},
		{"point off the curve", enc(func(r *wire.Presignature) { r.R = append([]byte{2}, make([]byte, 32)...) }), false},
		{"zero k share", enc(func(r *wire.Presignature) { r.KShare = make([]byte, 32) }), false},
		{"k share at the group order", enc(func(r *wire.Presignature) {
			r.KShare = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
				0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41}
		}), false},
		{"k share does not match commitment", enc(func(r *wire.Presignature) { r.KShare = flip(r.KShare) }), false},
		{"χ share does not match commitment", enc(func(r *wire.Presignature) { r.ChiShare = flip(r.ChiShare) }), false},
		{"commitments of another presignature", enc(func(r *wire.Presignature) { r.S[0] = other.S[0] }), false},
		{"public key of another key", enc(func(r *wire.Presignature) { r.PublicKey = other.PublicKey }), false},
		{"short epoch", enc(func(r *wire.Presignature) { r.Epoch = r.Epoch[:16] }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := mpc.UnmarshalPresignature(tc.in)
			if !tc.ok {
				if !errors.Is(err, mpc.ErrInvalidPresignature) || p != nil {
					t.Fatalf("got %v, want ErrInvalidPresignature", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			again, err := p.MarshalBinary()
			if err != nil || !bytes.Equal(again, tc.in) {
				t.Fatalf("valid presignature does not round-trip: %v", err)
			}
		})
	}
}

func TestPresignatureIDText(t *testing.T) {
	p := syntheticRecord(t)
	pre, err := mpc.UnmarshalPresignature(mustMarshalRecord(t, &p))
	if err != nil {
		t.Fatal(err)
	}
	back, err := mpc.ParsePresignatureID(pre.ID().String())
	if err != nil || back != pre.ID() {
		t.Fatalf("ID text does not round-trip: %v", err)
	}
	for _, bad := range []string{"", "zz", pre.ID().String()[:62]} {
		if _, err := mpc.ParsePresignatureID(bad); !errors.Is(err, mpc.ErrInvalidPresignature) {
			t.Errorf("ParsePresignatureID(%q): %v", bad, err)
		}
	}
}

func mustMarshalRecord(t testing.TB, r *wire.Presignature) []byte {
	t.Helper()
	b, err := wire.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnmarshalKeyShare(t *testing.T) {
	fx := loadFixture(t, "2of2")
	valid, err := fx.Shares["a"].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	rewrap := func(version uint, inner []byte) []byte {
		b, err := wire.Marshal(&wire.KeyShare{Version: version, Config: inner})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var rec wire.KeyShare
	if err := wire.Unmarshal(valid, &rec); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not a key share")},
		{"trailing byte", append(slices.Clone(valid), 0)},
		{"truncated", valid[:len(valid)/2]},
		{"oversize", make([]byte, mpc.MaxKeyShareSize+1)},
		{"version 2", rewrap(2, rec.Config)},
		{"inner garbage", rewrap(1, []byte{0xa0})},
		{"inner truncated", rewrap(1, rec.Config[:len(rec.Config)-10])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if k, err := mpc.UnmarshalKeyShare(tc.in); !errors.Is(err, mpc.ErrInvalidKeyShare) || k != nil {
				t.Fatalf("got %v, want ErrInvalidKeyShare", err)
			}
		})
	}
}

// FuzzDecodeEnvelope checks that DecodeEnvelope never panics and that what
// it accepts round-trips.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(mustEncode(f, sampleEnvelope()))
	f.Add(mustEncode(f, sampleAbortNotice()))
	b := sampleEnvelope()
	b.To, b.Broadcast = "", true
	f.Add(mustEncode(f, b))
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := mpc.DecodeEnvelope(data)
		if err != nil {
			if env != nil || !(errors.Is(err, mpc.ErrMalformed) || errors.Is(err, mpc.ErrOversize)) {
				t.Fatalf("error %v is not typed, or came with an envelope", err)
			}
			return
		}
		enc, err := mpc.EncodeEnvelope(env)
		if err != nil {
			t.Fatal(err)
		}
		again, err := mpc.DecodeEnvelope(enc)
		if err != nil {
			t.Fatalf("re-encoded envelope rejected: %v", err)
		}
		if !proto.Equal(env, again) {
			t.Fatal("envelope does not round-trip")
		}
	})
}

// FuzzUnmarshalPresignature checks that UnmarshalPresignature never panics
// and that what it accepts is exactly the canonical encoding it produces.
func FuzzUnmarshalPresignature(f *testing.F) {
	rec := syntheticRecord(f)
	f.Add(mustMarshalRecord(f, &rec))
	for _, set := range loadFixture(f, "3of3").Presignatures {
		for _, p := range set {
			b, err := p.MarshalBinary()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := mpc.UnmarshalPresignature(data)
		if err != nil {
			if p != nil || !errors.Is(err, mpc.ErrInvalidPresignature) {
				t.Fatalf("error %v is not typed, or came with a presignature", err)
			}
			return
		}
		again, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data) {
			t.Fatal("accepted presignature does not round-trip to the same bytes")
		}
	})
}

// FuzzParsePath checks that ParsePath never panics and round-trips.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"m", "m/44/60/0/0/7", "m/2147483647", "m/1'", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := mpc.ParsePath(s)
		if err != nil {
			if !errors.Is(err, mpc.ErrInvalidPath) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if p.String() != s {
			t.Fatalf("ParsePath(%q).String() = %q", s, p.String())
		}
	})
}
