package keyring_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/coterie-mpc/coterie/enclave/keyring"
)

// TestRecoveryRoundTrip exports a rotated keyring to two recovery keys:
// either opens it, the keys decrypt what the original encrypted, and the
// file shows no key in the clear. Another identity, a changed header and
// damage are refused, each named.
func TestRecoveryRoundTrip(t *testing.T) {
	kr, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	old, _ := kr.Encrypt("rec", []byte("old secret"))
	if _, err := kr.Rotate(); err != nil {
		t.Fatal(err)
	}
	a, _ := age.GenerateX25519Identity()
	b, _ := age.GenerateX25519Identity()
	var buf bytes.Buffer
	h := keyring.RecoveryHeader{ClusterID: "c-test", Node: "n1", ExportedAt: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	if err := kr.ExportRecovery(&buf, h, a.Recipient(), b.Recipient()); err != nil {
		t.Fatal(err)
	}
	file := buf.Bytes()
	if !bytes.Contains(file, []byte("-----BEGIN AGE ENCRYPTED FILE-----")) || bytes.Contains(file, []byte("CTKR")) {
		t.Fatal("the file is not armored age, or shows the keyring's encoding")
	}
	hdr, err := keyring.ReadRecoveryHeader(bytes.NewReader(file))
	if err != nil || hdr.ClusterID != "c-test" || hdr.Current != 2 || len(hdr.Versions) != 2 || len(hdr.Recipients) != 2 {
		t.Fatalf("header %+v, %v", hdr, err)
	}
	for _, id := range []*age.X25519Identity{a, b} {
		got, back, err := keyring.ImportRecovery(bytes.NewReader(file), id)
		if err != nil || got.ClusterID != "c-test" || back.Version() != 2 {
			t.Fatalf("import: %+v, %v", got, err)
		}
		if pt, err := back.Decrypt("rec", old); err != nil || string(pt) != "old secret" {
			t.Fatalf("the imported keyring opens %q, %v", pt, err)
		}
	}
	other, _ := age.GenerateX25519Identity()
	for _, tc := range []struct {
		name string
		file []byte
		want error
	}{
		{"another identity", file, keyring.ErrRecoveryIdentity},
		{"the cluster changed", bytes.Replace(bytes.Clone(file), []byte(`"c-test"`), []byte(`"c-evil"`), 1), keyring.ErrRecoveryFormat},
		{"not a recovery file", []byte("hello\n"), keyring.ErrRecoveryFormat},
		{"truncated", file[:len(file)/2], keyring.ErrRecoveryFormat},
	} {
		id := age.Identity(a)
		if tc.name == "another identity" {
			id = other
		}
		if _, _, err := keyring.ImportRecovery(bytes.NewReader(tc.file), id); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
