package keyring

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"errors"
	"testing"
)

func mustIdentity(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// TestRotationReachesEachMember wraps one version to two identities; each
// opens its own copy into a keyring that then encrypts under the version
// and still decrypts what the old version encrypted.
func TestRotationReachesEachMember(t *testing.T) {
	base := mustGenerate(t)
	old, err := base.Encrypt("rec", []byte("old secret"))
	if err != nil {
		t.Fatal(err)
	}
	v := NewVersionKey(2)
	defer v.Destroy()
	for _, member := range []string{"n1", "n2"} {
		pub, priv := mustIdentity(t)
		bind := []byte("cluster-1/" + member)
		w, err := v.WrapVersion(pub, bind)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(w, v.raw) {
			t.Fatal("the wrapped copy holds the key in the clear")
		}
		got, err := UnwrapVersion(priv, 2, v.Check(), bind, w)
		if err != nil {
			t.Fatalf("%s: %v", member, err)
		}
		kr := mustGenerate(t)
		kr.keys[1] = base.keys[1]
		if err := kr.Add(got); err != nil {
			t.Fatal(err)
		}
		if kr.Version() != 2 {
			t.Fatalf("%s: current version %d after Add, want 2", member, kr.Version())
		}
		ct, _ := kr.Encrypt("rec", []byte("new"))
		if ver, _ := CiphertextVersion(ct); ver != 2 {
			t.Fatalf("%s: new ciphertext under version %d, want 2", member, ver)
		}
		if pt, err := kr.Decrypt("rec", old); err != nil || string(pt) != "old secret" {
			t.Fatalf("%s: old ciphertext: %q, %v", member, pt, err)
		}
	}
}

// TestUnwrapVersionRefuses covers the copies a member must not accept.
func TestUnwrapVersionRefuses(t *testing.T) {
	pub, priv := mustIdentity(t)
	_, other := mustIdentity(t)
	v := NewVersionKey(3)
	bind := []byte("cluster-1/n1")
	w, err := v.WrapVersion(pub, bind)
	if err != nil {
		t.Fatal(err)
	}
	// A proposer that wraps another key under this rotation's check: the
	// copy opens (the info carries the check) but its key does not match.
	liar := &VersionKey{version: 3, raw: bytes.Repeat([]byte{7}, KeySize)}
	lieInfo := rotateInfoFor(3, v.Check(), pub, bind)
	lie := sealForTest(t, pub, lieInfo, liar.raw)
	tampered := bytes.Clone(w)
	tampered[len(tampered)-1] ^= 1
	for _, tc := range []struct {
		name    string
		id      ed25519.PrivateKey
		version uint32
		check   []byte
		bind    []byte
		wrapped []byte
		want    error
	}{
		{"another member's identity", other, 3, v.Check(), bind, w, ErrUnwrap},
		{"another version", priv, 4, v.Check(), bind, w, ErrUnwrap},
		{"another binding", priv, 3, v.Check(), []byte("cluster-1/n2"), w, ErrUnwrap},
		{"another check", priv, 3, NewVersionKey(3).Check(), bind, w, ErrUnwrap},
		{"tampered", priv, 3, v.Check(), bind, tampered, ErrUnwrap},
		{"truncated", priv, 3, v.Check(), bind, w[:10], ErrUnwrap},
		{"a key that does not match the check", priv, 3, v.Check(), bind, lie, ErrKeyMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := UnwrapVersion(tc.id, tc.version, tc.check, tc.bind, tc.wrapped)
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("UnwrapVersion = %v, %v; want %v", got, err, tc.want)
			}
			if bytes.Contains([]byte(err.Error()), v.raw) {
				t.Fatal("the error holds the key")
			}
		})
	}
}

func TestWrapVersionBadRecipient(t *testing.T) {
	v := NewVersionKey(2)
	// The identity point has small order; y = 2 is on no point of the
	// curve; 31 bytes is no key at all.
	identity := append([]byte{1}, make([]byte, 31)...)
	offCurve := append([]byte{2}, make([]byte, 31)...)
	for _, pub := range [][]byte{identity, offCurve, make([]byte, 31)} {
		if _, err := v.WrapVersion(pub, nil); !errors.Is(err, ErrBadRecipient) {
			t.Errorf("WrapVersion(%x) = %v, want ErrBadRecipient", pub, err)
		}
	}
}

func TestAdd(t *testing.T) {
	kr := mustGenerate(t)
	v3 := NewVersionKey(3)
	if err := kr.Add(v3); err != nil {
		t.Fatal(err)
	}
	// Replayed: the same key again changes nothing.
	if err := kr.Add(&VersionKey{version: 3, raw: bytes.Clone(v3.raw)}); err != nil {
		t.Fatalf("replayed Add: %v", err)
	}
	if err := kr.Add(NewVersionKey(3)); !errors.Is(err, ErrVersionConflict) {
		t.Fatalf("Add of another key as version 3 = %v, want ErrVersionConflict", err)
	}
	// An older version is held but does not become current.
	if err := kr.Add(NewVersionKey(2)); err != nil {
		t.Fatal(err)
	}
	if kr.Version() != 3 || !kr.Holds(2) || !kr.Holds(1) {
		t.Fatalf("versions %v, current %d; want 1..3, current 3", kr.Versions(), kr.Version())
	}
	if err := kr.Add(NewVersionKey(0)); err == nil {
		t.Fatal("Add of version 0 succeeded")
	}
	// The sealed form round-trips the added versions.
	b := kr.marshal()
	back, err := unmarshal(b)
	if err != nil || back.Version() != 3 || len(back.Versions()) != 3 {
		t.Fatalf("round trip: %v, %v", back, err)
	}
}

// sealForTest seals raw to pub under info as WrapVersion does, so a test
// can make a copy whose key disagrees with its check value.
func sealForTest(t *testing.T, pub ed25519.PublicKey, info, raw []byte) []byte {
	t.Helper()
	x, err := x25519Public(pub)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := hpke.NewDHKEMPublicKey(x)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := hpke.Seal(pk, transferKDF, transferAEAD, info, raw)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}
