//go:build nitro

package kmsseal_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/enclavetest"
	"github.com/coterie-mpc/coterie/enclave/nitro"
	"github.com/coterie-mpc/coterie/enclave/nitro/cms"
	"github.com/coterie-mpc/coterie/enclave/nitro/kmsseal"
	"github.com/coterie-mpc/coterie/enclave/nitro/nitrotest"
)

const (
	region  = "eu-west-1"
	kmsHost = "kms.eu-west-1.amazonaws.com"
	keyARN  = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

// fixture is a test KMS behind TLS for kmsHost, reached the way an
// enclave reaches KMS: the client dials a proxy address (here the test
// server's) whatever host it asks for, and TLS checks the KMS name.
type fixture struct {
	now    time.Time
	pki    *nitrotest.PKI
	kms    *nitrotest.KMS
	client *kms.Client
	file   string
}

func newFixture(t *testing.T, conditions map[uint32][]byte) *fixture {
	t.Helper()
	now := time.Now()
	pki := nitrotest.NewPKI(t, now)
	v, err := nitro.New(nitro.Config{Roots: pki.Roots(), Clock: clock.NewFake(now.Add(time.Minute)), MaxAge: nitro.DefaultMaxAge})
	if err != nil {
		t.Fatal(err)
	}
	fake := &nitrotest.KMS{T: t, KeyID: keyARN, Alias: "alias/coterie", Verifier: v, Conditions: conditions}
	srv := httptest.NewUnstartedServer(fake)
	cert, roots := serverCert(t, kmsHost, now)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	proxy := srv.Listener.Addr().String()
	var (
		mu     sync.Mutex
		dialed []string
	)
	client, err := kmsseal.NewClient(kmsseal.ClientConfig{
		Region:  region,
		RootCAs: roots,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, addr)
			mu.Unlock()
			var d net.Dialer
			return d.DialContext(ctx, "tcp", proxy)
		},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "test-secret", Source: "test"}, nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range dialed {
			if a != kmsHost+":443" {
				t.Errorf("the client dialled %s, want %s:443 through the proxy", a, kmsHost)
			}
		}
	})
	return &fixture{now: now, pki: pki, kms: fake, client: client, file: filepath.Join(t.TempDir(), kmsseal.FileName)}
}

// serverCert returns a certificate for host and a pool that trusts it.
func serverCert(t *testing.T, host string, now time.Time) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), DNSNames: []string{host},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: c}, pool
}

// config returns a Config for an enclave whose PCR0 is filled with pcr0.
func (f *fixture) config(t *testing.T, pcr0 byte, policy enclave.KeyPolicy) kmsseal.Config {
	return kmsseal.Config{
		KMS: f.client, KeyID: keyARN, KeyPolicy: policy,
		Documents:   &nitrotest.Attester{T: t, PKI: f.pki, PCRs: nitrotest.PCRs(pcr0), Now: func() time.Time { return f.now }},
		DataKeyFile: f.file, Create: true, Logger: enclavetest.Logger(t),
	}
}

var ad = []byte("record/identity")

func TestSealAcrossRestarts(t *testing.T) {
	for _, policy := range []enclave.KeyPolicy{enclave.KeyPolicyCode, enclave.KeyPolicyProduct} {
		t.Run(policy.String(), func(t *testing.T) {
			f := newFixture(t, map[uint32][]byte{0: nitrotest.PCR(0xa0)})
			cfg := f.config(t, 0xa0, policy)
			first, err := kmsseal.Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			blob, err := first.Seal([]byte("the keyring"), ad)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Create = false
			second, err := kmsseal.Open(context.Background(), cfg)
			if err != nil {
				t.Fatalf("Open after restart = %v", err)
			}
			if got, err := second.Unseal(blob, ad); err != nil || string(got) != "the keyring" {
				t.Fatalf("Unseal after restart = %q, %v", got, err)
			}
			if got := f.kms.Calls(); !slices.Equal(got, []string{"GenerateDataKey", "Decrypt"}) {
				t.Fatalf("KMS calls = %v, want GenerateDataKey then Decrypt", got)
			}
			if _, err := second.Unseal(blob, []byte("another record")); !errors.Is(err, enclave.ErrWrongAssociatedData) {
				t.Fatalf("Unseal(other ad) = %v, want ErrWrongAssociatedData", err)
			}
			blob[len(blob)-1] ^= 1
			if _, err := second.Unseal(blob, ad); !errors.Is(err, enclave.ErrTampered) {
				t.Fatalf("Unseal(tampered) = %v, want ErrTampered", err)
			}
			if s := second.Self(); !bytes.Equal(s.Measurement, nitrotest.PCR(0xa0)) || s.Kind != enclave.KindNitro {
				t.Fatalf("Self = %s", s)
			}
		})
	}
}

// TestWrongPCRGetsNoKey: KMS, enforcing the key policy's PCR0 condition,
// releases no data key to an enclave with another PCR0, neither a new one
// nor the node's existing one.
func TestWrongPCRGetsNoKey(t *testing.T) {
	f := newFixture(t, map[uint32][]byte{0: nitrotest.PCR(0xa0)})
	if _, err := kmsseal.Open(context.Background(), f.config(t, 0xbb, enclave.KeyPolicyCode)); !errors.Is(err, kmsseal.ErrKeyRefused) ||
		!strings.Contains(err.Error(), "AccessDeniedException") {
		t.Fatalf("Open(first start, wrong PCR0) = %v, want ErrKeyRefused (AccessDeniedException)", err)
	}
	if _, err := os.Stat(f.file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused first start left a data key file: %v", err)
	}
	if _, err := kmsseal.Open(context.Background(), f.config(t, 0xa0, enclave.KeyPolicyCode)); err != nil {
		t.Fatal(err)
	}
	cfg := f.config(t, 0xbb, enclave.KeyPolicyCode)
	cfg.Create = false
	if _, err := kmsseal.Open(context.Background(), cfg); !errors.Is(err, kmsseal.ErrKeyRefused) {
		t.Fatalf("Open(restart, wrong PCR0) = %v, want ErrKeyRefused", err)
	}
}

// TestProductPolicySurvivesUpgrade: with the key policy on PCR8, an
// upgraded image (another PCR0, the same signer) gets the data key and
// unseals what the old one sealed under KeyPolicyProduct.
func TestProductPolicySurvivesUpgrade(t *testing.T) {
	f := newFixture(t, map[uint32][]byte{8: nitrotest.PCR(8)})
	old, err := kmsseal.Open(context.Background(), f.config(t, 0xa0, enclave.KeyPolicyProduct))
	if err != nil {
		t.Fatal(err)
	}
	blob, err := old.Seal([]byte("the keyring"), ad)
	if err != nil {
		t.Fatal(err)
	}
	upgraded, err := kmsseal.Open(context.Background(), f.config(t, 0xa1, enclave.KeyPolicyProduct))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := upgraded.Unseal(blob, ad); err != nil || string(got) != "the keyring" {
		t.Fatalf("Unseal after upgrade = %q, %v", got, err)
	}
	oldCode, err := kmsseal.Open(context.Background(), f.config(t, 0xa0, enclave.KeyPolicyCode))
	if err != nil {
		t.Fatal(err)
	}
	codeBlob, err := oldCode.Seal([]byte("bound to the old image"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := upgraded.Unseal(codeBlob, ad); !errors.Is(err, enclave.ErrOtherBuild) {
		t.Fatalf("Unseal(code-bound blob of the old image) = %v, want ErrOtherBuild", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	pcr0 := map[uint32][]byte{0: nitrotest.PCR(0xa0)}
	tests := []struct {
		name string
		// before runs after a good first start, before the restart.
		before func(t *testing.T, f *fixture)
		want   error
	}{
		{"wrapped key altered", func(t *testing.T, f *fixture) {
			f.kms.Tamper = func(b []byte) []byte { e := mustParse(t, b); e.WrappedKey[7] ^= 1; return b }
		}, cms.ErrDecrypt},
		{"IV altered", func(t *testing.T, f *fixture) {
			// CBC cannot notice: the first block, the data key's start,
			// changes and the padding stays right.
			f.kms.Tamper = func(b []byte) []byte { e := mustParse(t, b); e.IV[0] ^= 1; return b }
		}, kmsseal.ErrWrongDataKey},
		{"envelope truncated", func(t *testing.T, f *fixture) {
			f.kms.Tamper = func(b []byte) []byte { return b[:len(b)-5] }
		}, cms.ErrMalformed},
		{"check value altered", func(t *testing.T, f *fixture) {
			b := mustRead(t, f.file)
			b[5] ^= 1
			mustWrite(t, f.file, b)
		}, kmsseal.ErrWrongDataKey},
		{"file truncated", func(t *testing.T, f *fixture) {
			b := mustRead(t, f.file)
			mustWrite(t, f.file, b[:len(b)-1])
		}, kmsseal.ErrBadDataKeyFile},
		{"file names another key", func(t *testing.T, f *fixture) {
			// The parent writes the file: one naming a key of its own
			// account (with a data key it knows) must not be used.
			b := mustRead(t, f.file)
			mustWrite(t, f.file, bytes.Replace(b, []byte("111122223333"), []byte("999999999999"), 1))
		}, kmsseal.ErrOtherKey},
		{"file removed", func(t *testing.T, f *fixture) {
			if err := os.Remove(f.file); err != nil {
				t.Fatal(err)
			}
		}, kmsseal.ErrNoDataKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, pcr0)
			if _, err := kmsseal.Open(context.Background(), f.config(t, 0xa0, enclave.KeyPolicyCode)); err != nil {
				t.Fatal(err)
			}
			tt.before(t, f)
			cfg := f.config(t, 0xa0, enclave.KeyPolicyCode)
			cfg.Create = false
			if _, err := kmsseal.Open(context.Background(), cfg); !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

// plaintextKMS answers as KMS would if it ignored the Recipient: with the
// data key in Plaintext too.
type plaintextKMS struct{ kmsseal.KMS }

func (p plaintextKMS) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, opts ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	out, err := p.KMS.GenerateDataKey(ctx, in, opts...)
	if out != nil {
		out.Plaintext = make([]byte, 32)
	}
	return out, err
}

func TestPlaintextAnswerRefused(t *testing.T) {
	f := newFixture(t, nil)
	cfg := f.config(t, 0xa0, enclave.KeyPolicyCode)
	cfg.KMS = plaintextKMS{f.client}
	if _, err := kmsseal.Open(context.Background(), cfg); !errors.Is(err, kmsseal.ErrPlaintextExposed) {
		t.Fatalf("Open = %v, want ErrPlaintextExposed", err)
	}
}

// TestDebugEnclaveRefused: a debug enclave's memory is open to the parent,
// so the sealer refuses to run in one unless told it is development.
func TestDebugEnclaveRefused(t *testing.T) {
	f := newFixture(t, nil)
	cfg := f.config(t, 0xa0, enclave.KeyPolicyCode)
	cfg.Documents = &nitrotest.Attester{T: t, PKI: f.pki, PCRs: nitrotest.DebugPCRs(), Now: func() time.Time { return f.now }}
	if _, err := kmsseal.Open(context.Background(), cfg); !errors.Is(err, kmsseal.ErrDebugEnclave) {
		t.Fatalf("Open = %v, want ErrDebugEnclave", err)
	}
}

func TestProductPolicyNeedsSignedImage(t *testing.T) {
	f := newFixture(t, nil)
	cfg := f.config(t, 0xa0, enclave.KeyPolicyProduct)
	pcrs := nitrotest.PCRs(0xa0)
	pcrs[8] = nitrotest.PCR(0)
	cfg.Documents = &nitrotest.Attester{T: t, PKI: f.pki, PCRs: pcrs, Now: func() time.Time { return f.now }}
	if _, err := kmsseal.Open(context.Background(), cfg); !errors.Is(err, kmsseal.ErrUnsignedImage) {
		t.Fatalf("Open = %v, want ErrUnsignedImage", err)
	}
}

func TestForeignDataKey(t *testing.T) {
	f := newFixture(t, nil)
	a, err := kmsseal.Open(context.Background(), f.config(t, 0xa0, enclave.KeyPolicyCode))
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.config(t, 0xa0, enclave.KeyPolicyCode)
	cfg.DataKeyFile = filepath.Join(t.TempDir(), kmsseal.FileName)
	b, err := kmsseal.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := a.Seal([]byte("x"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Unseal(blob, ad); !errors.Is(err, enclave.ErrForeignEnclave) {
		t.Fatalf("Unseal(another node's blob) = %v, want ErrForeignEnclave", err)
	}
}

func mustParse(t *testing.T, b []byte) cms.Envelope {
	t.Helper()
	e, err := cms.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
