package sim

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/internal/dataseal"
)

var testMeasurement = func() []byte { m := sha256.Sum256([]byte("sim test build")); return m[:] }()

// machine is one simulated machine: a platform key file of its own.
type machine struct {
	t        *testing.T
	platform string
}

func newMachine(t *testing.T) *machine {
	return &machine{t: t, platform: filepath.Join(t.TempDir(), "platform.key")}
}

func (m *machine) config(dataDir string) Config {
	cfg := DefaultConfig()
	cfg.DataDir = dataDir
	cfg.CreateRoot = true
	cfg.PlatformKeyFile = m.platform
	cfg.Measurement = testMeasurement
	cfg.Logger = slog.New(slog.NewTextHandler(m.t.Output(), nil))
	return cfg
}

func (m *machine) enclave(dataDir string, edit func(*Config)) *Enclave {
	m.t.Helper()
	cfg := m.config(dataDir)
	if edit != nil {
		edit(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		m.t.Fatalf("New: %v", err)
	}
	return e
}

func TestSealRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, policy := range []enclave.KeyPolicy{enclave.KeyPolicyCode, enclave.KeyPolicyProduct} {
		e := newMachine(t).enclave(dir+"/"+policy.String(), func(c *Config) { c.KeyPolicy = policy })
		for _, tc := range []struct {
			plaintext, ad []byte
		}{
			{nil, nil},
			{[]byte("x"), nil},
			{[]byte("secret"), []byte("record")},
			{bytes.Repeat([]byte{7}, 100000), bytes.Repeat([]byte{1}, 1000)},
		} {
			blob, err := e.Seal(tc.plaintext, tc.ad)
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.plaintext) >= 4 && bytes.Contains(blob, tc.plaintext) {
				t.Fatalf("sealed blob contains its plaintext")
			}
			got, err := e.Unseal(blob, tc.ad)
			if err != nil || !bytes.Equal(got, tc.plaintext) {
				t.Fatalf("%s: Unseal = %d bytes, %v", policy, len(got), err)
			}
		}
		again, _ := e.Seal([]byte("secret"), nil)
		twice, _ := e.Seal([]byte("secret"), nil)
		if bytes.Equal(again, twice) {
			t.Fatal("two seals of the same plaintext are equal")
		}
	}
}

func TestUnsealReopened(t *testing.T) {
	m := newMachine(t)
	dir := t.TempDir()
	blob, err := m.enclave(dir, nil).Seal([]byte("secret"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.enclave(dir, func(c *Config) { c.CreateRoot = false }).Unseal(blob, []byte("ad"))
	if err != nil || string(got) != "secret" {
		t.Fatalf("Unseal after reopening = %q, %v", got, err)
	}
}

// sealErrors are the typed errors Unseal may return for bad input.
var sealErrors = []error{enclave.ErrMalformedBlob, enclave.ErrTampered, enclave.ErrWrongAssociatedData,
	enclave.ErrForeignEnclave, enclave.ErrOtherBuild}

func isSealError(err error) bool {
	for _, want := range sealErrors {
		if errors.Is(err, want) {
			return true
		}
	}
	return false
}

func TestUnsealBadInput(t *testing.T) {
	m := newMachine(t)
	dir := t.TempDir()
	e := m.enclave(dir, nil)
	ad := []byte("record/1")
	blob, err := e.Seal([]byte("a secret of some length"), ad)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("every bit flipped", func(t *testing.T) {
		for i := range len(blob) * 8 {
			bad := bytes.Clone(blob)
			bad[i/8] ^= 1 << (i % 8)
			_, err := e.Unseal(bad, ad)
			if !isSealError(err) {
				t.Fatalf("bit %d: Unseal = %v, want a typed error", i, err)
			}
			// Past the header, only the AEAD can notice.
			if i/8 >= enclave.SealedHeaderSize && !errors.Is(err, enclave.ErrTampered) {
				t.Fatalf("bit %d in the payload: Unseal = %v, want ErrTampered", i, err)
			}
		}
	})
	t.Run("every truncation", func(t *testing.T) {
		for n := range len(blob) {
			if _, err := e.Unseal(blob[:n], ad); !errors.Is(err, enclave.ErrMalformedBlob) && !errors.Is(err, enclave.ErrTampered) {
				t.Fatalf("truncated to %d: Unseal = %v", n, err)
			}
		}
	})
	t.Run("moved to another record", func(t *testing.T) {
		for _, other := range [][]byte{nil, []byte("record/2"), []byte("record/1 ")} {
			if _, err := e.Unseal(blob, other); !errors.Is(err, enclave.ErrWrongAssociatedData) {
				t.Fatalf("Unseal with ad %q = %v, want ErrWrongAssociatedData", other, err)
			}
		}
	})
	t.Run("another machine", func(t *testing.T) {
		// The same data directory, root and all, on another machine.
		other := newMachine(t).enclave(dir, func(c *Config) { c.CreateRoot = false })
		_, err := other.Unseal(blob, ad)
		if !errors.Is(err, enclave.ErrForeignEnclave) || !strings.Contains(err.Error(), "belongs to another machine") {
			t.Fatalf("Unseal on another machine = %v, want ErrForeignEnclave", err)
		}
	})
	t.Run("another data directory", func(t *testing.T) {
		if _, err := m.enclave(t.TempDir(), nil).Unseal(blob, ad); !errors.Is(err, enclave.ErrForeignEnclave) {
			t.Fatalf("Unseal with another root = %v, want ErrForeignEnclave", err)
		}
	})
}

func TestKeyPolicy(t *testing.T) {
	m := newMachine(t)
	dir := t.TempDir()
	newCode := sha256.Sum256([]byte("sim test build v2"))
	upgrade := func(c *Config) { c.Measurement = newCode[:] }
	otherSigner := func(c *Config) { c.Signer = testMeasurement }
	otherProduct := func(c *Config) { c.ProductID = 2 }

	codeBlob, _ := m.enclave(dir, func(c *Config) { c.KeyPolicy = enclave.KeyPolicyCode }).Seal([]byte("s"), nil)
	productBlob, _ := m.enclave(dir, nil).Seal([]byte("s"), nil)

	for _, tc := range []struct {
		name string
		blob []byte
		edit func(*Config)
		want error
	}{
		{"code policy, same build", codeBlob, nil, nil},
		{"code policy, upgraded build", codeBlob, upgrade, enclave.ErrOtherBuild},
		{"product policy, upgraded build", productBlob, upgrade, nil},
		{"product policy, other signer", productBlob, otherSigner, enclave.ErrOtherBuild},
		{"product policy, other product", productBlob, otherProduct, enclave.ErrOtherBuild},
	} {
		_, err := m.enclave(dir, tc.edit).Unseal(tc.blob, nil)
		if (tc.want == nil && err != nil) || !errors.Is(err, tc.want) {
			t.Errorf("%s: Unseal = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	m := newMachine(t)
	t.Run("production", func(t *testing.T) {
		cfg := m.config(t.TempDir())
		cfg.Production = true
		if _, err := New(cfg); !errors.Is(err, ErrProductionMode) {
			t.Fatalf("New in production = %v, want ErrProductionMode", err)
		}
		if entries, _ := os.ReadDir(cfg.DataDir); len(entries) != 0 {
			t.Fatalf("a refused New wrote %d files", len(entries))
		}
	})
	t.Run("validate reports everything", func(t *testing.T) {
		err := Config{KeyPolicy: 9, Measurement: []byte{1}, Signer: []byte{2}, TrustedPlatforms: []ed25519.PublicKey{{3}}}.Validate()
		for _, want := range []string{"DataDir", "PlatformKeyFile", "KeyPolicy", "Measurement", "Signer", "TrustedPlatforms[0]", "Logger"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Validate() = %v, missing %s", err, want)
			}
		}
		if err := m.config("d").Validate(); err != nil {
			t.Errorf("Validate(good) = %v", err)
		}
	})
	t.Run("missing root", func(t *testing.T) {
		cfg := m.config(t.TempDir())
		cfg.CreateRoot = false
		if _, err := New(cfg); !errors.Is(err, ErrNoRoot) {
			t.Fatalf("New without a root = %v, want ErrNoRoot", err)
		}
	})
	t.Run("truncated root", func(t *testing.T) {
		dir := t.TempDir()
		m.enclave(dir, nil)
		root := filepath.Join(dir, RootFile)
		if err := os.Truncate(root, 31); err != nil {
			t.Fatal(err)
		}
		if _, err := New(m.config(dir)); !errors.Is(err, ErrBadSecretFile) {
			t.Fatalf("New with a truncated root = %v, want ErrBadSecretFile", err)
		}
	})
	t.Run("truncated platform key", func(t *testing.T) {
		cfg := m.config(t.TempDir())
		cfg.PlatformKeyFile = filepath.Join(t.TempDir(), "p")
		if err := os.WriteFile(cfg.PlatformKeyFile, []byte("short"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := New(cfg); !errors.Is(err, ErrBadSecretFile) {
			t.Fatalf("New with a bad platform key = %v, want ErrBadSecretFile", err)
		}
	})
}

func TestFilesAreOwnerOnly(t *testing.T) {
	m := newMachine(t)
	dir := filepath.Join(t.TempDir(), "node")
	m.enclave(dir, nil)
	for _, path := range []string{filepath.Join(dir, RootFile), m.platform} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 || st.Size() != secretSize {
			t.Errorf("%s: mode %v, %d bytes; want 0600, %d bytes", path, st.Mode().Perm(), st.Size(), secretSize)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("data directory holds %d entries, want only the root (no temporary files)", len(entries))
	}
}

// TestWarnsOnEveryStart checks the development-only warning.
func TestWarnsOnEveryStart(t *testing.T) {
	m := newMachine(t)
	dir := t.TempDir()
	var logs bytes.Buffer
	for range 2 {
		cfg := m.config(dir)
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		if _, err := New(cfg); err != nil {
			t.Fatal(err)
		}
	}
	t.Log(logs.String())
	if n := strings.Count(logs.String(), "level=WARN msg=\"simulated enclave in use: for development only"); n != 2 {
		t.Fatalf("got %d warnings in two starts, want 2", n)
	}
}

func TestDefaultMeasurementIsExecutable(t *testing.T) {
	cfg := newMachine(t).config(t.TempDir())
	cfg.Measurement = nil
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want, err := executableHash()
	if err != nil || !bytes.Equal(e.Self().Measurement, want) {
		t.Fatalf("measurement %x, want the executable's hash %x (%v)", e.Self().Measurement, want, err)
	}
}

// TestDerivedKeysNotOnDisk checks that the keys derived from the root never
// reach the data directory. The root itself is stored there in the clear:
// that is what makes sim a simulation, and why it protects nothing.
func TestDerivedKeysNotOnDisk(t *testing.T) {
	m := newMachine(t)
	dir := t.TempDir()
	e := m.enclave(dir, nil)
	blob, err := e.Seal([]byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "blob"), blob, 0o600); err != nil {
		t.Fatal(err)
	}
	root, _ := os.ReadFile(filepath.Join(dir, RootFile))
	seed, _ := os.ReadFile(m.platform)
	_, keys := sealKeys(root, seed, testMeasurement, DefaultSigner, e.Self().Product)
	secrets := [][]byte{seed, keys[enclave.KeyPolicyCode], keys[enclave.KeyPolicyProduct],
		dataseal.Derive(seed, "coterie/sim/v1/machine-seal-secret")}
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		for i, s := range secrets {
			for off := 0; off+16 <= len(s); off++ {
				if bytes.Contains(data, s[off:off+16]) {
					t.Errorf("%s holds derived secret %d", path, i)
					break
				}
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func BenchmarkSeal1KiB(b *testing.B) {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.PlatformKeyFile = b.TempDir(), filepath.Join(b.TempDir(), "p")
	cfg.CreateRoot, cfg.Measurement = true, testMeasurement
	cfg.Logger = slog.New(slog.DiscardHandler)
	e, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	plain, ad := make([]byte, 1024), []byte("record")
	b.SetBytes(1024)
	for b.Loop() {
		blob, _ := e.Seal(plain, ad)
		if _, err := e.Unseal(blob, ad); err != nil {
			b.Fatal(err)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
