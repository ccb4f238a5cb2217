package cluster

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/protocol"
)

func fuzzSeeds() [][]byte {
	cmds := []*protocol.ClusterCommand{
		ClaimCommand("r1", "u1"),
		ReserveCommand("r1", PresignatureRef{KeyID: "k1", ID: "p1"}),
		CompleteCommand("r1", OutcomeRejected, "policy"),
		ReleaseCommand("n2", ""), ReleaseCommand("n2", "u1"),
		PresignaturesAddedCommand("k1", "", []SealedPresignature{{ID: "p1", OriginSeq: 1, Sealed: []byte{1}}, {ID: "p2", OriginSeq: 2, Sealed: []byte{2}}}),
		PresignaturesAddedCommand("k1", "r1", []SealedPresignature{{ID: "p3", OriginSeq: 3, Sealed: []byte{3}}}),
		ReserveCommand("r1", PresignatureRef{KeyID: "k1"}),
		APIUserAddedCommand(Record{ID: "u1", Public: []byte("x"), Sealed: []byte{3}}),
		KeyRecordAddedCommand(Record{ID: "k1", OwnerID: "u1", Sealed: []byte{4}}),
	}
	var out [][]byte
	for _, c := range cmds {
		stamp(c, "n1", unixNano(1_000_000_000))
		b, _ := EncodeCommand(c)
		out = append(out, b)
	}
	return append(out, nil, []byte{0xff}, []byte{0x08, 0x02})
}

// FuzzApply feeds arbitrary bytes to Apply on an FSM that already holds
// state. Apply must return an error for anything DecodeCommand refuses,
// never panic; a command that decodes must survive an encode/decode round
// trip; and the state must still snapshot and restore to the same bytes.
func FuzzApply(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsm := NewFSM()
		for i, s := range fuzzSeeds()[:5] {
			fsm.Apply(&raft.Log{Index: uint64(i + 1), Data: s})
		}
		cmd, derr := DecodeCommand(data)
		res := fsm.Apply(&raft.Log{Index: 100, Data: data})
		if derr != nil {
			if _, ok := res.(error); !ok {
				t.Fatalf("Apply accepted bytes that DecodeCommand refuses (%v)", derr)
			}
		} else {
			b, err := EncodeCommand(cmd)
			if err != nil {
				t.Fatal(err)
			}
			again, err := DecodeCommand(b)
			if err != nil || !proto.Equal(cmd, again) {
				t.Fatalf("round trip: %v", err)
			}
		}
		state, err := fsm.EncodeState()
		if err != nil {
			t.Fatal(err)
		}
		restored := NewFSM()
		if err := restored.Restore(io.NopCloser(bytes.NewReader(state))); err != nil {
			t.Fatalf("restore of our own snapshot: %v", err)
		}
		back, _ := restored.EncodeState()
		if !bytes.Equal(back, state) {
			t.Fatal("snapshot does not round-trip")
		}
	})
}

// FuzzRestore feeds arbitrary snapshots to Restore: it must refuse or
// accept them without panicking, and an accepted one must re-encode to a
// state that restores again.
func FuzzRestore(f *testing.F) {
	fsm := NewFSM()
	for i, s := range fuzzSeeds()[:7] {
		fsm.Apply(&raft.Log{Index: uint64(i + 1), Data: s})
	}
	state, _ := fsm.EncodeState()
	f.Add(state)
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewFSM()
		if err := r.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			return
		}
		b, err := r.EncodeState()
		if err != nil {
			t.Fatal(err)
		}
		again := NewFSM()
		if err := again.Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
			t.Fatalf("re-encoded state does not restore: %v", err)
		}
		// Queries on a restored state never panic.
		for _, key := range []string{"k1", ""} {
			r.PoolDepth(key)
			r.Available(key)
		}
		r.Unclaimed()
		r.APIUsers()
		r.KeyRecords()
	})
}

// FuzzReadFrame feeds arbitrary bytes to the frame reader that forwarded
// requests and join exchanges come through: it must refuse or return a
// frame without panicking, never return more than its bound, and a frame
// it returns must write back to the bytes it read.
func FuzzReadFrame(f *testing.F) {
	var ok bytes.Buffer
	_ = writeFrame(&ok, []byte("hello"))
	f.Add(ok.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 9, 1, 2})
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 1 << 10
		b, err := readFrame(nopDeadline{bytes.NewReader(data)}, max, time.Second)
		if err != nil {
			return
		}
		if len(b) > max {
			t.Fatalf("frame of %d bytes over the bound", len(b))
		}
		var back bytes.Buffer
		if err := writeFrame(&back, b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.Bytes(), data[:back.Len()]) {
			t.Fatal("frame does not round-trip")
		}
	})
}

// FuzzJoinAnswer feeds arbitrary answer frames to the joiner's decoder:
// an answer must re-encode to the same bytes, a refusal must match
// ErrJoinRefused and carry clean text, and nothing panics.
func FuzzJoinAnswer(f *testing.F) {
	f.Add(encodeJoinAnswer([]byte("keyring"), nil))
	f.Add(encodeJoinAnswer(nil, errors.New("token expired")))
	f.Add([]byte{})
	f.Add([]byte{7})
	f.Add(append([]byte{joinRefused}, "\x1b[2J\xff"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		answer, err := decodeJoinAnswer(data)
		switch {
		case err == nil:
			if !bytes.Equal(encodeJoinAnswer(answer, nil), data) {
				t.Fatal("answer does not round-trip")
			}
		case errors.Is(err, ErrJoinRefused):
			text := strings.TrimPrefix(err.Error(), ErrJoinRefused.Error()+": ")
			if len(text) > maxJoinErrorBytes || !utf8.ValidString(text) || strings.ContainsFunc(text, unicode.IsControl) {
				t.Fatalf("refusal text not clean: %q", text)
			}
			// The server's own encoding of that text decodes to the same.
			if _, again := decodeJoinAnswer(encodeJoinAnswer(nil, errors.New(text))); again == nil || again.Error() != err.Error() {
				t.Fatalf("refusal does not round-trip: %v, then %v", err, again)
			}
		case !errors.Is(err, errMalformedJoinAnswer):
			t.Fatalf("unexpected error %v", err)
		}
	})
}
