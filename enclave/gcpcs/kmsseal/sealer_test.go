package kmsseal_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/enclavetest"
	"github.com/coterie-mpc/coterie/enclave/gcpcs"
	"github.com/coterie-mpc/coterie/enclave/gcpcs/gcpcstest"
	"github.com/coterie-mpc/coterie/enclave/gcpcs/kmsseal"
)

const (
	provider = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/coterie/providers/attestation"
	keyName  = "projects/coterie-test/locations/europe-west4/keyRings/coterie/cryptoKeys/data-key"
)

var (
	digestA = "sha256:" + strings.Repeat("a1", 32)
	digestB = "sha256:" + strings.Repeat("b2", 32)
)

// fixture is a test issuer, an STS whose provider admits only digestA,
// and a Cloud KMS that trusts that STS, all over local TLS.
type fixture struct {
	issuer *gcpcstest.Issuer
	sts    *gcpcstest.STS
	kms    *gcpcstest.KMS
	dir    string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	iss := gcpcstest.NewIssuer(t)
	sts := gcpcstest.NewSTS(t, iss, provider, digestA)
	return &fixture{issuer: iss, sts: sts, kms: gcpcstest.NewKMS(t, sts, keyName), dir: t.TempDir()}
}

// config returns a Config for a workload of image digest whose tokens come
// from a test launcher on a unix socket.
func (f *fixture) config(t *testing.T, digest string, create bool) kmsseal.Config {
	t.Helper()
	socket := gcpcstest.NewLauncher(t, func(r gcpcstest.LauncherRequest) string {
		return f.issuer.Token(t, gcpcstest.Spec{Audience: r.Audience, IssuedAt: time.Now(), ImageDigest: digest, Nonces: r.Nonces})
	})
	cfg := kmsseal.DefaultConfig()
	cfg.Tokens = gcpcs.NewLauncher(socket)
	cfg.Provider, cfg.KeyName = provider, keyName
	cfg.STSEndpoint, cfg.KMSEndpoint = f.sts.URL(), f.kms.URL()
	cfg.HTTPClient = f.sts.Server.Client() // httptest's servers share one certificate
	cfg.DataKeyFile = filepath.Join(f.dir, kmsseal.FileName)
	cfg.Create = create
	cfg.Logger = enclavetest.Logger(t)
	return cfg
}

var ad = []byte("record/identity")

func TestSealAcrossRestarts(t *testing.T) {
	f := newFixture(t)
	s, err := kmsseal.Open(context.Background(), f.config(t, digestA, true))
	if err != nil {
		t.Fatal(err)
	}
	if s.Kind() != enclave.KindConfidentialSpace || s.KeyPolicy() != enclave.KeyPolicyCode {
		t.Fatalf("Kind, KeyPolicy = %s, %s", s.Kind(), s.KeyPolicy())
	}
	if id := s.Self(); id.Kind != enclave.KindConfidentialSpace || !bytes.Equal(id.Measurement, bytes.Repeat([]byte{0xa1}, 32)) || id.Debug {
		t.Fatalf("Self = %s", id)
	}
	blob, err := s.Seal([]byte("identity key"), ad)
	if err != nil {
		t.Fatal(err)
	}

	again, err := kmsseal.Open(context.Background(), f.config(t, digestA, false))
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	if got, err := again.Unseal(blob, ad); err != nil || string(got) != "identity key" {
		t.Fatalf("Unseal after restart = %q, %v", got, err)
	}

	// The plaintext data key never reaches the data directory.
	keys := f.kms.Plaintexts()
	if len(keys) != 1 || len(keys[0]) != 32 {
		t.Fatalf("the KMS encrypted %d plaintexts, want one data key", len(keys))
	}
	if found, err := enclavetest.ScanDir(f.dir, keys); err != nil || len(found) != 0 {
		t.Fatalf("the data key is in %v (%v)", found, err)
	}
}

// TestOtherImageGetsNoKey: STS refuses the token of an image its
// provider's attribute condition does not admit, so neither a first start
// nor a restart of that image gets the data key.
func TestOtherImageGetsNoKey(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t, digestB, true)
	if _, err := kmsseal.Open(context.Background(), cfg); !errors.Is(err, kmsseal.ErrKeyRefused) {
		t.Fatalf("first start of another image: Open = %v, want ErrKeyRefused", err)
	}
	if _, err := os.Stat(cfg.DataKeyFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused first start left a data key file: %v", err)
	}
	if _, err := kmsseal.Open(context.Background(), f.config(t, digestA, true)); err != nil {
		t.Fatal(err)
	}
	_, err := kmsseal.Open(context.Background(), f.config(t, digestB, false))
	if !errors.Is(err, kmsseal.ErrKeyRefused) {
		t.Fatalf("restart as another image: Open = %v, want ErrKeyRefused", err)
	}
	if !strings.Contains(err.Error(), "attribute condition") {
		t.Errorf("the refusal does not say why: %v", err)
	}
}

func TestDataKeyFileRefusals(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, cfg *kmsseal.Config, file []byte) []byte
		want   error
	}{
		{"missing", func(t *testing.T, _ *kmsseal.Config, _ []byte) []byte { return nil }, kmsseal.ErrNoDataKey},
		{"truncated", func(t *testing.T, _ *kmsseal.Config, b []byte) []byte { return b[:len(b)-1] }, kmsseal.ErrBadDataKeyFile},
		{"bad magic", func(t *testing.T, _ *kmsseal.Config, b []byte) []byte { b[0] ^= 1; return b }, kmsseal.ErrBadDataKeyFile},
		{"check value", func(t *testing.T, _ *kmsseal.Config, b []byte) []byte { b[5] ^= 1; return b }, kmsseal.ErrWrongDataKey},
		{"ciphertext", func(t *testing.T, _ *kmsseal.Config, b []byte) []byte { b[len(b)-1] ^= 1; return b }, kmsseal.ErrKeyRefused},
		{"other key", func(t *testing.T, cfg *kmsseal.Config, b []byte) []byte {
			cfg.KeyName = strings.Replace(keyName, "data-key", "other-key", 1)
			return b
		}, kmsseal.ErrOtherKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			cfg := f.config(t, digestA, true)
			if _, err := kmsseal.Open(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(cfg.DataKeyFile)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Create = false
			if b = tt.change(t, &cfg, b); b == nil {
				err = os.Remove(cfg.DataKeyFile)
			} else {
				err = os.WriteFile(cfg.DataKeyFile, b, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kmsseal.Open(context.Background(), cfg); !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestWrongKMSAnswer: a decrypt answer that is not the data key written at
// first start is refused, whether it is consistent (the check value
// catches it) or corrupted (its CRC32C does).
func TestWrongKMSAnswer(t *testing.T) {
	tests := []struct {
		name  string
		alter func(k *gcpcstest.KMS)
		want  error
	}{
		{"other key", func(k *gcpcstest.KMS) {
			k.AlterPlaintext = func(p []byte) []byte { p[0] ^= 1; return p }
		}, kmsseal.ErrWrongDataKey},
		{"short key", func(k *gcpcstest.KMS) {
			k.AlterPlaintext = func(p []byte) []byte { return p[:16] }
		}, kmsseal.ErrWrongDataKey},
		{"bad checksum", func(k *gcpcstest.KMS) { k.BadChecksum = true }, kmsseal.ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if _, err := kmsseal.Open(context.Background(), f.config(t, digestA, true)); err != nil {
				t.Fatal(err)
			}
			tt.alter(f.kms)
			if _, err := kmsseal.Open(context.Background(), f.config(t, digestA, false)); !errors.Is(err, tt.want) {
				t.Fatalf("restart: Open = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestFirstStartProvesDecrypt: a first start whose decrypt answer is wrong
// writes no data key file, so a node never keeps a key it cannot get back.
func TestFirstStartProvesDecrypt(t *testing.T) {
	f := newFixture(t)
	f.kms.AlterPlaintext = func(p []byte) []byte { p[0] ^= 1; return p }
	cfg := f.config(t, digestA, true)
	if _, err := kmsseal.Open(context.Background(), cfg); !errors.Is(err, kmsseal.ErrWrongDataKey) {
		t.Fatalf("Open = %v, want ErrWrongDataKey", err)
	}
	if _, err := os.Stat(cfg.DataKeyFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed first start left a data key file: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*kmsseal.Config)
		want   []string // substrings of the error; none means valid
	}{
		{"good", func(*kmsseal.Config) {}, nil},
		{"empty", func(c *kmsseal.Config) { *c = kmsseal.Config{} },
			[]string{"Tokens is nil", "Provider", "KeyName", "STSEndpoint", "KMSEndpoint", "HTTPClient", "KeyPolicy", "DataKeyFile", "Logger"}},
		{"provider with https", func(c *kmsseal.Config) { c.Provider = "https:" + provider }, []string{"Provider"}},
		{"provider by project id", func(c *kmsseal.Config) { c.Provider = strings.Replace(provider, "123456789012", "coterie-test", 1) }, []string{"Provider"}},
		{"key version", func(c *kmsseal.Config) { c.KeyName = keyName + "/cryptoKeyVersions/1" }, []string{"KeyName"}},
		{"key path traversal", func(c *kmsseal.Config) { c.KeyName = "projects/coterie-test/locations/x/keyRings/../cryptoKeys/k" }, []string{"KeyName"}},
		{"http sts", func(c *kmsseal.Config) { c.STSEndpoint = "http://127.0.0.1:1/v1/token" }, []string{"STSEndpoint", "not https"}},
		{"http kms", func(c *kmsseal.Config) { c.KMSEndpoint = "http://cloudkms.googleapis.com" }, []string{"KMSEndpoint", "not https"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := kmsseal.DefaultConfig()
			c.Tokens = gcpcs.NewLauncher("/nonexistent")
			c.Provider, c.KeyName, c.DataKeyFile, c.Logger = provider, keyName, "/tmp/x", enclavetest.Logger(t)
			tt.change(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate = nil")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v, want it to mention %q", err, w)
				}
			}
		})
	}
}
