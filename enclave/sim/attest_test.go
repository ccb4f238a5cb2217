package sim

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/coterie-mpc/coterie/enclave"
)

func allowMeasurement(m []byte) enclave.Policy {
	return enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindSim, Measurement: m}}}
}

func TestEvidenceRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := newMachine(t).enclave(t.TempDir(), nil)
	rd := []byte("report data")
	ev, err := e.Evidence(ctx, rd)
	if err != nil {
		t.Fatal(err)
	}
	id, err := e.Verify(ctx, ev, allowMeasurement(testMeasurement))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := enclave.PadReportData(rd)
	self := e.Self()
	if id.Kind != enclave.KindSim || !bytes.Equal(id.ReportData, want) || !bytes.Equal(id.Measurement, self.Measurement) ||
		!bytes.Equal(id.Signer, self.Signer) || !bytes.Equal(id.Product, self.Product) || id.SecurityVersion != self.SecurityVersion {
		t.Fatalf("Verify = %v, want %v with report data %x", id, self, want)
	}
	// The signer-and-product form of policy admits it too.
	if _, err := e.Verify(ctx, ev, enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindSim, Signer: self.Signer, Product: self.Product}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Evidence(ctx, make([]byte, 65)); !errors.Is(err, enclave.ErrReportDataTooLong) {
		t.Fatalf("Evidence(65 bytes) = %v, want ErrReportDataTooLong", err)
	}
}

func TestVerifyAcrossMachines(t *testing.T) {
	ctx := context.Background()
	a, b := newMachine(t), newMachine(t)
	joiner := b.enclave(t.TempDir(), nil)
	ev, err := joiner.Evidence(ctx, []byte("key hash"))
	if err != nil {
		t.Fatal(err)
	}
	stranger := a.enclave(t.TempDir(), nil)
	if _, err := stranger.Verify(ctx, ev, allowMeasurement(testMeasurement)); !errors.Is(err, enclave.ErrEvidenceUnverified) {
		t.Fatalf("Verify with an untrusted platform = %v, want ErrEvidenceUnverified", err)
	}
	holder := a.enclave(t.TempDir(), func(c *Config) { c.TrustedPlatforms = []ed25519.PublicKey{joiner.PlatformKey()} })
	if _, err := holder.Verify(ctx, ev, allowMeasurement(testMeasurement)); err != nil {
		t.Fatalf("Verify with a trusted platform = %v", err)
	}
	other := sha256.Sum256([]byte("another build"))
	if _, err := holder.Verify(ctx, ev, allowMeasurement(other[:])); !errors.Is(err, enclave.ErrNotAllowed) {
		t.Fatalf("Verify of a disallowed measurement = %v, want ErrNotAllowed", err)
	}
}

func TestVerifyBadEvidence(t *testing.T) {
	ctx := context.Background()
	e := newMachine(t).enclave(t.TempDir(), nil)
	policy := allowMeasurement(testMeasurement)
	ev, err := e.Evidence(ctx, []byte("rd"))
	if err != nil {
		t.Fatal(err)
	}
	verifyErrors := []error{enclave.ErrMalformedEvidence, enclave.ErrEvidenceUnverified, enclave.ErrNotAllowed, enclave.ErrUnsupportedKind}
	for i := range len(ev) * 8 {
		bad := bytes.Clone(ev)
		bad[i/8] ^= 1 << (i % 8)
		_, err := e.Verify(ctx, bad, policy)
		ok := false
		for _, want := range verifyErrors {
			ok = ok || errors.Is(err, want)
		}
		if !ok {
			t.Fatalf("bit %d flipped: Verify = %v, want a typed error", i, err)
		}
	}
	for n := range len(ev) {
		if _, err := e.Verify(ctx, ev[:n], policy); !errors.Is(err, enclave.ErrMalformedEvidence) {
			t.Fatalf("truncated to %d: Verify = %v, want ErrMalformedEvidence", n, err)
		}
	}
	sgx := enclave.AppendEvidence(nil, enclave.KindSGX, []byte("quote"))
	if _, err := e.Verify(ctx, sgx, policy); !errors.Is(err, enclave.ErrUnsupportedKind) {
		t.Fatalf("Verify(sgx evidence) = %v, want ErrUnsupportedKind", err)
	}
	if _, err := e.Verify(ctx, ev, enclave.Policy{}); !errors.Is(err, enclave.ErrInvalidPolicy) {
		t.Fatalf("Verify with an empty policy = %v, want ErrInvalidPolicy", err)
	}
}

// FuzzUnseal feeds arbitrary blobs and associated data to Unseal, which
// must fail with a typed error and never panic, and checks that sealing the
// same inputs round-trips.
func FuzzUnseal(f *testing.F) {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.PlatformKeyFile = f.TempDir(), f.TempDir()+"/platform.key"
	cfg.CreateRoot, cfg.Measurement, cfg.Logger = true, testMeasurement, discardLogger()
	e, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	seed, _ := e.Seal([]byte("secret"), []byte("ad"))
	f.Add(seed, []byte("ad"))
	f.Add([]byte("CTSB"), []byte(nil))
	f.Fuzz(func(t *testing.T, data, ad []byte) {
		if _, err := e.Unseal(data, ad); err != nil && !isSealError(err) {
			t.Fatalf("untyped error %v", err)
		}
		blob, err := e.Seal(data, ad)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Unseal(blob, ad)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzVerify feeds arbitrary evidence to Verify, which must fail with a
// typed error and never panic, and checks that the statement decoder
// round-trips what it accepts.
func FuzzVerify(f *testing.F) {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.PlatformKeyFile = f.TempDir(), f.TempDir()+"/platform.key"
	cfg.CreateRoot, cfg.Measurement, cfg.Logger = true, testMeasurement, discardLogger()
	e, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	ev, _ := e.Evidence(context.Background(), []byte("rd"))
	f.Add(ev)
	f.Add([]byte("CTEV\x01\x01"))
	policy := allowMeasurement(testMeasurement)
	f.Fuzz(func(t *testing.T, evidence []byte) {
		_, err := e.Verify(context.Background(), evidence, policy)
		if err != nil && !errors.Is(err, enclave.ErrMalformedEvidence) && !errors.Is(err, enclave.ErrEvidenceUnverified) &&
			!errors.Is(err, enclave.ErrNotAllowed) && !errors.Is(err, enclave.ErrUnsupportedKind) {
			t.Fatalf("untyped error %v", err)
		}
		kind, payload, err := enclave.ParseEvidence(evidence)
		if err != nil || kind != enclave.KindSim {
			return
		}
		st, err := parseStatement(payload)
		if err != nil {
			return
		}
		if again := append(st.appendSigned(nil), st.sig...); !bytes.Equal(again, payload) {
			t.Fatalf("round trip: %x != %x", again, payload)
		}
	})
}
