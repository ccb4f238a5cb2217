package store

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/enclavetest"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/enclave/sim"
)

func testConfig(t *testing.T, dir string) Config {
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.LockTimeout = time.Millisecond
	cfg.Logger = enclavetest.Logger(t)
	return cfg
}

// fixture is an initialized data directory.
type fixture struct {
	dir      string
	machine  *enclavetest.Machine
	enclave  *sim.Enclave
	identity ed25519.PrivateKey
	keyring  *keyring.Keyring
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: filepath.Join(t.TempDir(), "node"), machine: enclavetest.NewMachine(t)}
	f.enclave = f.machine.Enclave(f.dir, nil)
	_, f.identity, _ = ed25519.GenerateKey(nil)
	f.keyring, _ = keyring.Generate()
	if err := Create(testConfig(t, f.dir), f.enclave, f.identity, f.keyring); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) path() string { return filepath.Join(f.dir, FileName) }

func (f *fixture) open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(testConfig(t, f.dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestCreateOpenRoundTrip(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	info := s.Info()
	if info.Schema != SchemaVersion || info.Kind != enclave.KindSim || info.KeyPolicy != enclave.KeyPolicyProduct ||
		!info.Identity.Equal(f.identity.Public()) {
		t.Fatalf("Info = %+v", info)
	}
	id, err := s.Identity(f.enclave)
	if err != nil || !id.Equal(f.identity) {
		t.Fatalf("Identity = %v", err)
	}
	kr, err := s.Keyring(f.enclave)
	if err != nil || kr.Version() != 1 {
		t.Fatalf("Keyring = %v", err)
	}
	ct, _ := f.keyring.Encrypt("r", []byte("x"))
	if _, err := kr.Decrypt("r", ct); err != nil {
		t.Fatalf("stored keyring differs: %v", err)
	}
	for _, p := range []string{f.dir, f.path()} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if st.IsDir() {
			want = 0o700
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, st.Mode().Perm(), want)
		}
	}
	entries, _ := os.ReadDir(f.dir)
	if len(entries) != 2 {
		t.Errorf("data directory holds %d entries, want node.db and sim-root only", len(entries))
	}
}

func TestSaveKeyringAfterRotate(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	if _, err := f.keyring.Rotate(); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveKeyring(f.enclave, f.keyring); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	kr, err := f.open(t).Keyring(f.enclave)
	if err != nil || kr.Version() != 2 {
		t.Fatalf("after save and reopen: version %v, %v", kr, err)
	}
}

// TestSaveJoin: a join replaces the node's keyring with the cluster's and
// keeps the join record sealed beside it; a node that never joined has no
// record.
func TestSaveJoin(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	if _, ok, err := s.Members(f.enclave); ok || err != nil {
		t.Fatalf("a fresh store has a join record: %v, %v", ok, err)
	}
	clusterKR, _ := keyring.Generate()
	if err := s.SaveJoin(f.enclave, clusterKR, []byte("cluster c1, members n1 n2")); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s = f.open(t)
	got, ok, err := s.Members(f.enclave)
	if err != nil || !ok || string(got) != "cluster c1, members n1 n2" {
		t.Fatalf("join record %q, %v, %v", got, ok, err)
	}
	kr, err := s.Keyring(f.enclave)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := clusterKR.Encrypt("r", []byte("x"))
	if pt, err := kr.Decrypt("r", ct); err != nil || string(pt) != "x" {
		t.Fatalf("the stored keyring is not the cluster's: %v", err)
	}
	if err := s.SaveMembers(f.enclave, []byte("members n1 n2 n3")); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.Members(f.enclave); err != nil || string(got) != "members n1 n2 n3" {
		t.Fatalf("member table %q, %v", got, err)
	}
}

func TestCreateRefusesOverwrite(t *testing.T) {
	f := newFixture(t)
	before, _ := os.ReadFile(f.path())
	_, other, _ := ed25519.GenerateKey(nil)
	kr, _ := keyring.Generate()
	if err := Create(testConfig(t, f.dir), f.enclave, other, kr); !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("Create over a store = %v, want ErrAlreadyInitialized", err)
	}
	after, _ := os.ReadFile(f.path())
	if !bytes.Equal(before, after) {
		t.Fatal("a refused Create changed the store")
	}
}

func TestOpenErrors(t *testing.T) {
	t.Run("not initialized", func(t *testing.T) {
		if _, err := Open(testConfig(t, t.TempDir())); !errors.Is(err, ErrNotInitialized) {
			t.Fatalf("Open = %v, want ErrNotInitialized", err)
		}
	})
	t.Run("invalid config", func(t *testing.T) {
		err := Config{}.Validate()
		for _, want := range []string{"Dir", "LockTimeout", "Logger"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Validate() = %v, missing %s", err, want)
			}
		}
	})
	t.Run("locked", func(t *testing.T) {
		f := newFixture(t)
		f.open(t)
		if _, err := Open(testConfig(t, f.dir)); !errors.Is(err, ErrLocked) {
			t.Fatalf("second Open = %v, want ErrLocked", err)
		}
	})
	t.Run("newer schema", func(t *testing.T) {
		f := newFixture(t)
		rewrite(t, f.path(), bucketMeta, keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion+1))
		if _, err := Open(testConfig(t, f.dir)); !errors.Is(err, ErrNewerSchema) {
			t.Fatalf("Open = %v, want ErrNewerSchema", err)
		}
	})
	for _, tc := range []struct {
		name   string
		bucket []byte
		key    []byte
		value  []byte
	}{
		{"no schema", bucketMeta, keySchema, nil},
		{"schema zero", bucketMeta, keySchema, []byte{0, 0, 0, 0}},
		{"bad kind", bucketMeta, keyKind, []byte{99}},
		{"no identity", bucketNode, keyIdentityPub, nil},
		{"no keyring", bucketNode, keyKeyring, nil},
		{"garbled sealed identity", bucketNode, keyIdentity, []byte("garbage")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			rewrite(t, f.path(), tc.bucket, tc.key, tc.value)
			if _, err := Open(testConfig(t, f.dir)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
		})
	}
}

// rewrite sets (or, for a nil value, deletes) one key behind the store's
// back.
func rewrite(t *testing.T, path string, bucket, key, value []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		if value == nil {
			return tx.Bucket(bucket).Delete(key)
		}
		return tx.Bucket(bucket).Put(key, value)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func highWater(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var size int64
	_ = db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	return int(size)
}

func readRecord(t *testing.T, path string, key []byte) []byte {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v []byte
	_ = db.View(func(tx *bolt.Tx) error {
		v = bytes.Clone(tx.Bucket(bucketNode).Get(key))
		return nil
	})
	return v
}

func TestTruncatedOrDamagedFile(t *testing.T) {
	f := newFixture(t)
	orig, err := os.ReadFile(f.path())
	if err != nil {
		t.Fatal(err)
	}
	// bbolt grows its file ahead of use; only a cut below the high-water
	// mark loses data. A cut above it must still open and unseal.
	hwm := highWater(t, f.path())
	sizes := []int{0, 1, 100, 4095, 4096, 8191, 8192, 12288, hwm - 4096, hwm - 1, hwm, len(orig) - 1}
	for _, n := range sizes {
		if err := os.WriteFile(f.path(), orig[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(testConfig(t, f.dir))
		if n < hwm {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("truncated to %d bytes (high water %d): Open = %v, want ErrCorrupt", n, hwm, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("truncated to %d bytes, above the high water %d: Open = %v", n, hwm, err)
		}
		if _, err := s.Keyring(f.enclave); err != nil {
			t.Fatalf("truncated to %d bytes, above the high water %d: Keyring = %v", n, hwm, err)
		}
		_ = s.Close()
	}
	// Garbage, and zeroed meta pages.
	garbage := bytes.Repeat([]byte{0xA5}, len(orig))
	zeroMeta := append(make([]byte, 8192), orig[8192:]...)
	for name, data := range map[string][]byte{"garbage": garbage, "zeroed meta pages": zeroMeta} {
		if err := os.WriteFile(f.path(), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(testConfig(t, f.dir)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: Open = %v, want ErrCorrupt", name, err)
		}
	}
}

// TestEveryByteDamaged changes bytes all over the used part of the file,
// one at a time and a prime stride apart, and checks that Open and the unseals either
// succeed with the right secrets or fail with a typed error: never a panic,
// never a wrong secret.
func TestDamagedBytes(t *testing.T) {
	f := newFixture(t)
	orig, err := os.ReadFile(f.path())
	if err != nil {
		t.Fatal(err)
	}
	typed := []error{ErrCorrupt, ErrNewerSchema, enclave.ErrMalformedBlob, enclave.ErrTampered,
		enclave.ErrWrongAssociatedData, enclave.ErrForeignEnclave, enclave.ErrOtherBuild, keyring.ErrMalformedKeyring}
	isTyped := func(err error) bool {
		for _, want := range typed {
			if errors.Is(err, want) {
				return true
			}
		}
		return false
	}
	hwm := highWater(t, f.path())
	for i := 0; i < hwm; i += 29 {
		bad := bytes.Clone(orig)
		bad[i] ^= 0x5a
		if err := os.WriteFile(f.path(), bad, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(testConfig(t, f.dir))
		if err != nil {
			if !isTyped(err) {
				t.Fatalf("byte %d: Open = %v, want a typed error", i, err)
			}
			continue
		}
		id, err := s.Identity(f.enclave)
		if err == nil && !id.Equal(f.identity) {
			t.Fatalf("byte %d: unsealed a different identity", i)
		}
		if err != nil && !isTyped(err) {
			t.Fatalf("byte %d: Identity = %v, want a typed error", i, err)
		}
		if _, err := s.Keyring(f.enclave); err != nil && !isTyped(err) {
			t.Fatalf("byte %d: Keyring = %v, want a typed error", i, err)
		}
		_ = s.Close()
	}
}

func TestTamperedRecords(t *testing.T) {
	t.Run("one bit flipped in a sealed record", func(t *testing.T) {
		f := newFixture(t)
		sealed := readRecord(t, f.path(), keyKeyring)
		sealed[len(sealed)-1] ^= 1
		rewrite(t, f.path(), bucketNode, keyKeyring, sealed)
		if _, err := f.open(t).Keyring(f.enclave); !errors.Is(err, enclave.ErrTampered) {
			t.Fatalf("Keyring = %v, want ErrTampered", err)
		}
	})
	t.Run("records swapped", func(t *testing.T) {
		f := newFixture(t)
		id, kr := readRecord(t, f.path(), keyIdentity), readRecord(t, f.path(), keyKeyring)
		rewrite(t, f.path(), bucketNode, keyIdentity, kr)
		rewrite(t, f.path(), bucketNode, keyKeyring, id)
		s := f.open(t)
		if _, err := s.Identity(f.enclave); !errors.Is(err, enclave.ErrWrongAssociatedData) {
			t.Fatalf("Identity = %v, want ErrWrongAssociatedData", err)
		}
		if _, err := s.Keyring(f.enclave); !errors.Is(err, enclave.ErrWrongAssociatedData) {
			t.Fatalf("Keyring = %v, want ErrWrongAssociatedData", err)
		}
	})
	t.Run("identity from another node", func(t *testing.T) {
		// Same machine, another node's sealed identity: its public key,
		// part of the associated data, differs.
		f := newFixture(t)
		g := &fixture{dir: t.TempDir()}
		e := f.machine.Enclave(g.dir, nil)
		_, other, _ := ed25519.GenerateKey(nil)
		kr, _ := keyring.Generate()
		if err := Create(testConfig(t, g.dir), e, other, kr); err != nil {
			t.Fatal(err)
		}
		rewrite(t, f.path(), bucketNode, keyIdentity, readRecord(t, filepath.Join(g.dir, FileName), keyIdentity))
		if _, err := f.open(t).Identity(f.enclave); !errors.Is(err, enclave.ErrForeignEnclave) && !errors.Is(err, enclave.ErrWrongAssociatedData) {
			t.Fatalf("Identity = %v, want a foreign or wrong-record error", err)
		}
	})
	t.Run("identity sealed by the same enclave for another key", func(t *testing.T) {
		// The same sealer makes a second store: its identity blob opens
		// with this enclave, so only the public key in the associated data
		// keeps it from passing as this store's identity.
		f := newFixture(t)
		gdir := filepath.Join(t.TempDir(), "other")
		_, other, _ := ed25519.GenerateKey(nil)
		kr, _ := keyring.Generate()
		if err := Create(testConfig(t, gdir), f.enclave, other, kr); err != nil {
			t.Fatal(err)
		}
		rewrite(t, f.path(), bucketNode, keyIdentity, readRecord(t, filepath.Join(gdir, FileName), keyIdentity))
		if id, err := f.open(t).Identity(f.enclave); !errors.Is(err, enclave.ErrWrongAssociatedData) {
			t.Fatalf("Identity = %v (key of the other store: %v), want ErrWrongAssociatedData", err, id.Equal(other))
		}
	})
}

func TestAnotherMachinesDirectory(t *testing.T) {
	f := newFixture(t)
	other := enclavetest.NewMachine(t).Enclave(f.dir, func(c *sim.Config) { c.CreateRoot = false })
	s := f.open(t)
	_, err := s.Identity(other)
	if !errors.Is(err, enclave.ErrForeignEnclave) || !strings.Contains(err.Error(), "this data directory belongs to another machine") {
		t.Fatalf("Identity on another machine = %v, want ErrForeignEnclave", err)
	}
	if _, err := s.Keyring(other); !errors.Is(err, enclave.ErrForeignEnclave) {
		t.Fatalf("Keyring on another machine = %v, want ErrForeignEnclave", err)
	}
	if err := s.SaveKeyring(&otherKind{other}, f.keyring); !errors.Is(err, enclave.ErrForeignEnclave) {
		t.Fatalf("SaveKeyring with another kind of enclave = %v, want ErrForeignEnclave", err)
	}
}

// otherKind is a Sealer that claims another enclave kind.
type otherKind struct{ enclave.Sealer }

func (otherKind) Kind() enclave.Kind { return enclave.KindSGX }

// TestNoSecretOnDisk scans every byte of the data directory for the
// secrets the store seals: the identity key and the keyring's data keys
// (the plaintexts that went into Seal). The sim root is in the directory in
// the clear by design, so it is not one of them.
func TestNoSecretOnDisk(t *testing.T) {
	dir := t.TempDir()
	m := enclavetest.NewMachine(t)
	rec := enclavetest.NewRecordingSealer(m.Enclave(dir, nil))
	_, id, _ := ed25519.GenerateKey(nil)
	kr, _ := keyring.Generate()
	if err := Create(testConfig(t, dir), rec, id, kr); err != nil {
		t.Fatal(err)
	}
	s := newStoreForScan(t, dir)
	if _, err := kr.Rotate(); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveKeyring(rec, kr); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	// The seed is the whole private key: the second half of an Ed25519
	// private key is its public key, which the store keeps in the clear.
	secrets := append(rec.Secrets(), id.Seed())
	if len(secrets) < 4 {
		t.Fatalf("recorded %d secrets", len(secrets))
	}
	findings, err := enclavetest.ScanDir(dir, secrets)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Error(f)
	}
}

func newStoreForScan(t *testing.T, dir string) *Store {
	s, err := Open(testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCopy: a copy of an open store, written into another data directory
// of the same enclave, opens there with the latest records.
func TestCopy(t *testing.T) {
	f := newFixture(t)
	s := f.open(t)
	if _, err := f.keyring.Rotate(); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveKeyring(f.enclave, f.keyring); err != nil {
		t.Fatal(err)
	}
	b, err := s.Copy()
	if err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Open(testConfig(t, other))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kr, err := c.Keyring(f.enclave)
	if err != nil || kr.Version() != 2 {
		t.Fatalf("the copy's keyring: %v, %v", kr, err)
	}
}
