package snapfile_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/cluster/snapfile"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/protocol"
)

// state returns a small cluster state: a member n1 whose identity is pub,
// two presignatures of key k1, and a claimed request.
func state(t *testing.T, pub ed25519.PublicKey) []byte {
	t.Helper()
	f := cluster.NewFSM()
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	apply := func(i uint64, node string, cmd *protocol.ClusterCommand) {
		t.Helper()
		cmd.Version, cmd.Node, cmd.ProposedAtUnixNano = 1, node, at.UnixNano()
		data, err := cluster.EncodeCommand(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if err, _ := f.Apply(&raft.Log{Index: i, Data: data}).(error); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	policy := enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindSim, Measurement: []byte("m"), AllowDebug: true}}}
	member := cluster.Member{ID: "n1", Address: "127.0.0.1:7000", IdentityKey: pub, Enclave: enclave.Identity{Kind: enclave.KindSim, Measurement: []byte("m"), Debug: true}, JoinedAt: at}
	apply(1, "n1", cluster.InitCommand("c-test", policy, member))
	apply(2, "n1", cluster.PresignaturesAddedCommand("k1", "", []cluster.SealedPresignature{
		{ID: "p1", OriginSeq: 1, Sealed: []byte("ciphertext-1")}, {ID: "p2", OriginSeq: 2, Sealed: []byte("ciphertext-2")},
	}))
	apply(3, "n1", cluster.ClaimCommand("r1", "ws/u1"))
	b, err := f.EncodeState()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t *testing.T, st []byte, key ed25519.PrivateKey) []byte {
	t.Helper()
	var buf bytes.Buffer
	h := snapfile.Header{ClusterID: "c-test", Node: "n1", Index: 3, SavedAt: time.Date(2026, 12, 6, 12, 1, 0, 0, time.UTC)}
	if err := snapfile.Write(&buf, h, st, key); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRoundTrip: a written file reads back whole, and its summary names the
// cluster, its member (the signer), the pool and the request, from public
// fields alone.
func TestRoundTrip(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	st := state(t, pub)
	h, got, err := snapfile.Read(bytes.NewReader(write(t, st, key)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, st) || h.ClusterID != "c-test" || h.Node != "n1" || h.Index != 3 || h.StateBytes != int64(len(st)) {
		t.Fatalf("read back %+v and %d bytes", h, len(got))
	}
	s, err := snapfile.Summarize(got, h.IdentityKey)
	if err != nil {
		t.Fatal(err)
	}
	if s.ClusterID != "c-test" || s.AppliedIndex != 3 || s.Signer != "n1" || len(s.Members) != 1 ||
		s.Pools["k1"]["available"] != 2 || s.Requests["claimed"] != 1 || s.KeyringVersion != 1 {
		t.Fatalf("summary %+v", s)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if s, err := snapfile.Summarize(got, hex.EncodeToString(other)); err != nil || s.Signer != "" {
		t.Fatalf("a key outside the member table: signer %q, %v", s.Signer, err)
	}
}

// TestTampered: each kind of damage is refused and named.
func TestTampered(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	good := write(t, state(t, pub), key)
	headerEnd := bytes.IndexByte(good[len("coterie-snapshot v1\n"):], '\n') + len("coterie-snapshot v1\n")
	for _, tc := range []struct {
		name   string
		file   []byte
		want   error
		detail string
	}{
		{"not a snapshot", []byte("hello\n"), snapfile.ErrFormat, "does not start with"},
		{"truncated state", good[:len(good)-3], snapfile.ErrFormat, "truncated"},
		{"trailing bytes", append(bytes.Clone(good), 'x'), snapfile.ErrFormat, "after the state"},
		{"a state byte changed", flip(good, len(good)-1), snapfile.ErrChecksum, "SHA-256"},
		{"the index changed", bytes.Replace(bytes.Clone(good), []byte(`"index":3`), []byte(`"index":4`), 1), snapfile.ErrSignature, "signed by"},
		{"an unknown header field", bytes.Replace(bytes.Clone(good), []byte(`{"cluster_id"`), []byte(`{"x":1,"cluster_id"`), 1), snapfile.ErrFormat, "header"},
		{"no header end", good[:headerEnd], snapfile.ErrFormat, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := snapfile.Read(bytes.NewReader(tc.file))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.detail)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i] ^= 1
	return out
}
