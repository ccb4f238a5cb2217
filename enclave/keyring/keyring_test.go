package keyring

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/enclavetest"
)

func mustGenerate(t testing.TB) *Keyring {
	t.Helper()
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestEncryptDecrypt(t *testing.T) {
	k := mustGenerate(t)
	for _, tc := range []struct {
		record    string
		plaintext []byte
	}{
		{"", nil},
		{"presig/key-1/7", []byte("share")},
		{"user/\x00binary\xff", bytes.Repeat([]byte{9}, 70000)},
	} {
		ct, err := k.Encrypt(tc.record, tc.plaintext)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != len(tc.plaintext)+Overhead {
			t.Fatalf("ciphertext has %d bytes, want %d", len(ct), len(tc.plaintext)+Overhead)
		}
		got, err := k.Decrypt(tc.record, ct)
		if err != nil || !bytes.Equal(got, tc.plaintext) {
			t.Fatalf("Decrypt(%q) = %d bytes, %v", tc.record, len(got), err)
		}
	}
	a, _ := k.Encrypt("r", []byte("same"))
	b, _ := k.Encrypt("r", []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two encryptions of one record are equal")
	}
}

// decryptErrors are the typed errors Decrypt may return for bad input.
var decryptErrors = []error{ErrMalformedCiphertext, ErrUnknownVersion, ErrWrongRecord, ErrTampered}

func isDecryptError(err error) bool {
	for _, want := range decryptErrors {
		if errors.Is(err, want) {
			return true
		}
	}
	return false
}

func TestDecryptBadInput(t *testing.T) {
	k := mustGenerate(t)
	ct, err := k.Encrypt("presig/key-1/7", []byte("presignature share"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("every bit flipped", func(t *testing.T) {
		for i := range len(ct) * 8 {
			bad := bytes.Clone(ct)
			bad[i/8] ^= 1 << (i % 8)
			_, err := k.Decrypt("presig/key-1/7", bad)
			if !isDecryptError(err) {
				t.Fatalf("bit %d: Decrypt = %v, want a typed error", i, err)
			}
			if i/8 >= ctHeaderSize && !errors.Is(err, ErrTampered) {
				t.Fatalf("bit %d past the header: Decrypt = %v, want ErrTampered", i, err)
			}
		}
	})
	t.Run("every truncation", func(t *testing.T) {
		for n := range len(ct) {
			if _, err := k.Decrypt("presig/key-1/7", ct[:n]); !errors.Is(err, ErrMalformedCiphertext) && !errors.Is(err, ErrTampered) {
				t.Fatalf("truncated to %d: Decrypt = %v", n, err)
			}
		}
	})
	t.Run("moved to another record", func(t *testing.T) {
		for _, other := range []string{"presig/key-1/8", "presig/key-1/7 ", ""} {
			if _, err := k.Decrypt(other, ct); !errors.Is(err, ErrWrongRecord) {
				t.Fatalf("Decrypt as %q = %v, want ErrWrongRecord", other, err)
			}
		}
	})
	t.Run("another keyring", func(t *testing.T) {
		if _, err := mustGenerate(t).Decrypt("presig/key-1/7", ct); !errors.Is(err, ErrTampered) {
			t.Fatalf("Decrypt with another keyring = %v, want ErrTampered", err)
		}
	})
	t.Run("unknown version", func(t *testing.T) {
		k2 := mustGenerate(t)
		if _, err := k2.Rotate(); err != nil {
			t.Fatal(err)
		}
		ct2, _ := k2.Encrypt("r", []byte("x"))
		if _, err := k.Decrypt("r", ct2); !errors.Is(err, ErrUnknownVersion) {
			t.Fatalf("Decrypt of version 2 with a version-1 keyring = %v, want ErrUnknownVersion", err)
		}
	})
}

func TestRotate(t *testing.T) {
	k := mustGenerate(t)
	old, _ := k.Encrypt("r1", []byte("written under v1"))
	v, err := k.Rotate()
	if err != nil || v != 2 || k.Version() != 2 {
		t.Fatalf("Rotate = %d, %v; Version = %d", v, err, k.Version())
	}
	fresh, _ := k.Encrypt("r2", []byte("written under v2"))
	for _, tc := range []struct {
		ct      []byte
		record  string
		version uint32
	}{{old, "r1", 1}, {fresh, "r2", 2}} {
		if got, err := CiphertextVersion(tc.ct); err != nil || got != tc.version {
			t.Errorf("CiphertextVersion = %d, %v; want %d", got, err, tc.version)
		}
		if _, err := k.Decrypt(tc.record, tc.ct); err != nil {
			t.Errorf("Decrypt of version %d after rotation: %v", tc.version, err)
		}
	}
	if vs := k.Versions(); fmt.Sprint(vs) != "[1 2]" {
		t.Fatalf("Versions = %v", vs)
	}
	if _, err := CiphertextVersion([]byte("CK")); !errors.Is(err, ErrMalformedCiphertext) {
		t.Fatalf("CiphertextVersion(short) = %v", err)
	}

	full := mustGenerate(t)
	full.current = math.MaxUint32
	full.keys = map[uint32]*dataKey{math.MaxUint32: full.keys[1]}
	if _, err := full.Rotate(); !errors.Is(err, ErrTooManyVersions) {
		t.Fatalf("Rotate past the last version = %v, want ErrTooManyVersions", err)
	}
}

// TestConcurrentUse runs Encrypt, Decrypt and Rotate together; run it with
// -race.
func TestConcurrentUse(t *testing.T) {
	k := mustGenerate(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprintf("rec/%d/%d", g, i)
				ct, err := k.Encrypt(id, []byte(id))
				if err != nil {
					errs <- err
					return
				}
				if pt, err := k.Decrypt(id, ct); err != nil || string(pt) != id {
					errs <- fmt.Errorf("decrypt %s: %v", id, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if _, err := k.Rotate(); err != nil {
				errs <- err
				return
			}
			_ = k.marshal()
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if k.Version() != 21 {
		t.Fatalf("Version = %d after 20 rotations", k.Version())
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	k := mustGenerate(t)
	for range 3 {
		if _, err := k.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	ct, _ := k.Encrypt("r", []byte("x"))
	b := k.marshal()
	k2, err := unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k2.marshal(), b) || k2.Version() != 4 {
		t.Fatal("marshal round trip differs")
	}
	if pt, err := k2.Decrypt("r", ct); err != nil || string(pt) != "x" {
		t.Fatalf("decoded keyring cannot decrypt: %v", err)
	}
}

func TestUnmarshalBadInput(t *testing.T) {
	good := mustGenerate(t).marshal()
	entry := func(v uint32) []byte {
		return append([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}, make([]byte, KeySize)...)
	}
	header := func(current uint32, count uint16) []byte {
		return []byte{'C', 'T', 'K', 'R', 1, byte(current >> 24), byte(current >> 16), byte(current >> 8), byte(current), byte(count >> 8), byte(count)}
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(bytes.Clone(good), 0)},
		{"magic", cat([]byte("XTKR"), good[4:])},
		{"format", cat(good[:4], []byte{2}, good[5:])},
		{"no keys", header(1, 0)},
		{"count too high", cat(header(1, 2), entry(1))},
		{"descending", cat(header(2, 2), entry(2), entry(1))},
		{"duplicate", cat(header(1, 2), entry(1), entry(1))},
		{"version zero", cat(header(0, 1), entry(0))},
		{"current not highest", cat(header(1, 2), entry(1), entry(2))},
		{"current missing", cat(header(3, 1), entry(1))},
	} {
		if _, err := unmarshal(tc.b); !errors.Is(err, ErrMalformedKeyring) {
			t.Errorf("%s: unmarshal = %v, want ErrMalformedKeyring", tc.name, err)
		}
	}
}

func TestSealedRoundTrip(t *testing.T) {
	m := enclavetest.NewMachine(t)
	dir := t.TempDir()
	e := m.Enclave(dir, nil)
	k := mustGenerate(t)
	sealed, err := k.MarshalSealed(e)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := Open(e, sealed)
	if err != nil || !bytes.Equal(k2.marshal(), k.marshal()) {
		t.Fatalf("Open = %v", err)
	}
	other := enclavetest.NewMachine(t).Enclave(dir, nil)
	if _, err := Open(other, sealed); !errors.Is(err, enclave.ErrForeignEnclave) {
		t.Fatalf("Open on another machine = %v, want ErrForeignEnclave", err)
	}
	sealedOther, _ := e.Seal(k.marshal(), []byte("another record"))
	if _, err := Open(e, sealedOther); !errors.Is(err, enclave.ErrWrongAssociatedData) {
		t.Fatalf("Open of a blob sealed for another record = %v, want ErrWrongAssociatedData", err)
	}
	notKeyring, _ := e.Seal([]byte("not a keyring"), sealedAD)
	if _, err := Open(e, notKeyring); !errors.Is(err, ErrMalformedKeyring) {
		t.Fatalf("Open of a sealed non-keyring = %v, want ErrMalformedKeyring", err)
	}
}

// FuzzDecrypt feeds arbitrary ciphertexts and record IDs to Decrypt, which
// must fail with a typed error and never panic, and checks that the same
// inputs round-trip through Encrypt.
func FuzzDecrypt(f *testing.F) {
	k := mustGenerate(f)
	ct, _ := k.Encrypt("rec", []byte("plaintext"))
	f.Add(ct, "rec")
	f.Add([]byte("CK\x01"), "")
	f.Fuzz(func(t *testing.T, data []byte, record string) {
		if _, err := k.Decrypt(record, data); err != nil && !isDecryptError(err) {
			t.Fatalf("untyped error %v", err)
		}
		if v, err := CiphertextVersion(data); err == nil && len(data) >= ctHeaderSize {
			// The header round-trips: version and record hash sit where
			// Encrypt puts them.
			if v != uint32(data[3])<<24|uint32(data[4])<<16|uint32(data[5])<<8|uint32(data[6]) {
				t.Fatalf("CiphertextVersion = %d disagrees with the header", v)
			}
		}
		ct, err := k.Encrypt(record, data)
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := k.Decrypt(record, ct); err != nil || !bytes.Equal(pt, data) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzUnmarshal checks that the keyring decoder never panics, fails only
// with ErrMalformedKeyring, and re-encodes what it accepts byte for byte.
func FuzzUnmarshal(f *testing.F) {
	k := mustGenerate(f)
	f.Add(k.marshal())
	_, _ = k.Rotate()
	f.Add(k.marshal())
	f.Add([]byte("CTKR\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedKeyring) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if again := k.marshal(); !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x != %x", again, b)
		}
	})
}

func BenchmarkEncrypt1KiB(b *testing.B) {
	k := mustGenerate(b)
	plain := make([]byte, 1024)
	b.SetBytes(1024)
	for b.Loop() {
		if _, err := k.Encrypt("presig/key/1", plain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt1KiB(b *testing.B) {
	k := mustGenerate(b)
	ct, _ := k.Encrypt("presig/key/1", make([]byte, 1024))
	b.SetBytes(1024)
	for b.Loop() {
		if _, err := k.Decrypt("presig/key/1", ct); err != nil {
			b.Fatal(err)
		}
	}
}
