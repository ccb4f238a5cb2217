package nitro_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/nitro"
	"github.com/coterie-mpc/coterie/enclave/nitro/nitrotest"
)

var start = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// fixture is a test PKI and a verifier that trusts its root, on a fake
// clock one minute after the leaf was issued.
type fixture struct {
	pki   *nitrotest.PKI
	clock *clock.Fake
	v     *nitro.Verifier
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{pki: nitrotest.NewPKI(t, start), clock: clock.NewFake(start.Add(time.Minute))}
	cfg := nitro.DefaultConfig()
	cfg.Roots, cfg.Clock = f.pki.Roots(), f.clock
	v, err := nitro.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.v = v
	return f
}

// doc returns a genuine document made now, with PCR0 filled with pcr0 and
// reportData as user_data.
func (f *fixture) doc(t testing.TB, edit func(*nitro.Document)) []byte {
	d := nitro.Document{Timestamp: f.clock.Now(), PCRs: nitrotest.PCRs(0xa0), UserData: reportData()}
	if edit != nil {
		edit(&d)
	}
	return f.pki.Document(t, d)
}

func reportData() []byte { return bytes.Repeat([]byte{0x5d}, enclave.MaxReportData) }

func policy(rules ...enclave.Rule) enclave.Policy { return enclave.Policy{Allow: rules} }

var allowA0 = policy(enclave.Rule{Kind: enclave.KindNitro, Measurement: nitrotest.PCR(0xa0),
	PCRs: map[uint32][]byte{1: nitrotest.PCR(1), 2: nitrotest.PCR(2)}})

func evidence(doc []byte) []byte { return enclave.AppendEvidence(nil, enclave.KindNitro, doc) }

func TestVerifyGenuine(t *testing.T) {
	f := newFixture(t)
	id, err := f.v.Verify(context.Background(), evidence(f.doc(t, nil)), allowA0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(id.Measurement, nitrotest.PCR(0xa0)) || !bytes.Equal(id.Signer, nitrotest.PCR(8)) ||
		!bytes.Equal(id.PCRs[2], nitrotest.PCR(2)) || id.Debug || !bytes.Equal(id.ReportData, reportData()) {
		t.Fatalf("identity %s report data %x", id, id.ReportData)
	}
	// The COSE tag 18 in front is accepted too.
	if _, err := f.v.Verify(context.Background(), evidence(append([]byte{0xd2}, f.doc(t, nil)...)), allowA0); err != nil {
		t.Fatalf("tagged COSE_Sign1: %v", err)
	}
	// A rule on PCR8 alone (the signing certificate) admits it.
	if _, err := f.v.Verify(context.Background(), evidence(f.doc(t, nil)),
		policy(enclave.Rule{Kind: enclave.KindNitro, Signer: nitrotest.PCR(8)})); err != nil {
		t.Fatalf("PCR8 rule: %v", err)
	}
}

// TestVerifyRefusals: each way a document can be refused gets its own
// error, which also matches the enclave package's category.
func TestVerifyRefusals(t *testing.T) {
	f := newFixture(t)
	other := nitrotest.NewPKI(t, start)
	swapPayload := func(doc, payload []byte) []byte {
		var msg []cbor.RawMessage
		if err := cbor.Unmarshal(doc, &msg); err != nil {
			t.Fatal(err)
		}
		p, _ := cbor.Marshal(payload)
		msg[2] = p
		out, _ := cbor.Marshal(msg)
		return out
	}
	genuine := f.doc(t, nil)
	for _, tc := range []struct {
		name     string
		doc      []byte
		advance  time.Duration
		policy   enclave.Policy
		want     error
		category error
	}{
		{"ES256 header", func() []byte {
			var msg []cbor.RawMessage
			if err := cbor.Unmarshal(genuine, &msg); err != nil {
				t.Fatal(err)
			}
			hdr, _ := cbor.Marshal(map[int]int{1: -7})
			msg[0], _ = cbor.Marshal(hdr)
			out, _ := cbor.Marshal(msg)
			return out
		}(), 0, allowA0, nitro.ErrMalformed, enclave.ErrMalformedEvidence},
		{"bad signature", nitrotest.SignWith(t, nitrotest.NewKey(t), nitrotest.EncodePayload(t, nitro.Document{
			ModuleID: "m", Digest: "SHA384", Timestamp: start, PCRs: nitrotest.PCRs(0xa0), UserData: reportData(),
			Certificate: f.pki.Leaf.Raw, CABundle: [][]byte{f.pki.Root.Raw, f.pki.Intermediate.Raw},
		})), 0, allowA0, nitro.ErrBadSignature, enclave.ErrEvidenceUnverified},
		{"payload changed after signing", swapPayload(genuine, nitrotest.EncodePayload(t, nitro.Document{
			ModuleID: "m", Digest: "SHA384", Timestamp: start, PCRs: nitrotest.PCRs(0xa0), UserData: reportData(),
			Certificate: f.pki.Leaf.Raw, CABundle: [][]byte{f.pki.Root.Raw, f.pki.Intermediate.Raw},
		})), 0, allowA0, nitro.ErrBadSignature, enclave.ErrEvidenceUnverified},
		{"another root", other.Document(t, nitro.Document{Timestamp: start, PCRs: nitrotest.PCRs(0xa0), UserData: reportData()}),
			0, allowA0, nitro.ErrWrongChain, enclave.ErrEvidenceUnverified},
		{"leaf expired", genuine, nitrotest.LeafLife, allowA0, nitro.ErrExpired, enclave.ErrEvidenceUnverified},
		{"stale document", f.doc(t, func(d *nitro.Document) { d.Timestamp = start.Add(-20 * time.Minute) }),
			0, allowA0, nitro.ErrExpired, enclave.ErrEvidenceUnverified},
		{"document from the future", f.doc(t, func(d *nitro.Document) { d.Timestamp = start.Add(time.Hour) }),
			0, allowA0, nitro.ErrExpired, enclave.ErrEvidenceUnverified},
		{"PCR0 not allowed", f.doc(t, func(d *nitro.Document) { d.PCRs = nitrotest.PCRs(0xbb) }),
			0, allowA0, nitro.ErrPCRNotAllowed, enclave.ErrNotAllowed},
		{"PCR2 not allowed", f.doc(t, func(d *nitro.Document) { d.PCRs[2] = nitrotest.PCR(0x22) }),
			0, allowA0, nitro.ErrPCRNotAllowed, enclave.ErrNotAllowed},
		{"debug mode", f.doc(t, func(d *nitro.Document) { d.PCRs = nitrotest.DebugPCRs() }),
			0, allowA0, nitro.ErrDebugMode, enclave.ErrNotAllowed},
		// Debug enclaves and unsigned images measure as zeros: a rule that
		// pins zeros, or allows debug, would admit any code, and is refused.
		{"a rule pinning a zero PCR0", f.doc(t, func(d *nitro.Document) { d.PCRs = nitrotest.DebugPCRs() }),
			0, policy(enclave.Rule{Kind: enclave.KindNitro, Measurement: nitrotest.PCR(0)}), enclave.ErrInvalidPolicy, enclave.ErrInvalidPolicy},
		{"a rule pinning a zero PCR8", f.doc(t, func(d *nitro.Document) { d.PCRs[8] = nitrotest.PCR(0) }),
			0, policy(enclave.Rule{Kind: enclave.KindNitro, Signer: nitrotest.PCR(0)}), enclave.ErrInvalidPolicy, enclave.ErrInvalidPolicy},
		{"a rule allowing debug", f.doc(t, func(d *nitro.Document) { d.PCRs = nitrotest.DebugPCRs() }),
			0, policy(enclave.Rule{Kind: enclave.KindNitro, Measurement: nitrotest.PCR(0xa0), AllowDebug: true}), enclave.ErrInvalidPolicy, enclave.ErrInvalidPolicy},
		{"no report data", f.doc(t, func(d *nitro.Document) { d.UserData = nil }),
			0, allowA0, nitro.ErrMalformed, enclave.ErrMalformedEvidence},
		{"short PCR", f.doc(t, func(d *nitro.Document) { d.PCRs[3] = []byte{1} }),
			0, allowA0, nitro.ErrMalformed, enclave.ErrMalformedEvidence},
		{"SHA256 digest", f.doc(t, func(d *nitro.Document) { d.Digest = "SHA256" }),
			0, allowA0, nitro.ErrMalformed, enclave.ErrMalformedEvidence},
		{"no cabundle", f.doc(t, func(d *nitro.Document) { d.CABundle = [][]byte{} }),
			0, allowA0, nitro.ErrMalformed, enclave.ErrMalformedEvidence},
		{"garbage", []byte("not cbor at all"), 0, allowA0, nitro.ErrMalformed, enclave.ErrMalformedEvidence},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clock.NewFake(f.clock.Now().Add(tc.advance))
			cfg := nitro.DefaultConfig()
			cfg.Roots, cfg.Clock = f.pki.Roots(), c
			if tc.advance > 0 {
				cfg.MaxAge = 24 * time.Hour // only the certificate's expiry is under test
			}
			v, err := nitro.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(context.Background(), evidence(tc.doc), tc.policy)
			if !errors.Is(err, tc.want) || !errors.Is(err, tc.category) {
				t.Fatalf("Verify = %v, want %v and %v", err, tc.want, tc.category)
			}
			t.Log(err)
		})
	}
}

func TestVerifyDocumentNonce(t *testing.T) {
	f := newFixture(t)
	nonce := []byte("challenge-1234")
	doc := f.doc(t, func(d *nitro.Document) { d.Nonce = nonce })
	if _, err := f.v.VerifyDocument(doc, nitro.Expect{Nonce: nonce}); err != nil {
		t.Fatalf("matching nonce: %v", err)
	}
	for _, want := range [][]byte{[]byte("challenge-1235"), {}} {
		if _, err := f.v.VerifyDocument(doc, nitro.Expect{Nonce: want}); !errors.Is(err, nitro.ErrNonceMismatch) {
			t.Fatalf("nonce %q: %v, want ErrNonceMismatch", want, err)
		}
	}
}

func TestVerifyOtherKind(t *testing.T) {
	f := newFixture(t)
	ev := enclave.AppendEvidence(nil, enclave.KindSim, f.doc(t, nil))
	if _, err := f.v.Verify(context.Background(), ev, allowA0); !errors.Is(err, enclave.ErrUnsupportedKind) {
		t.Fatalf("Verify(sim evidence) = %v, want ErrUnsupportedKind", err)
	}
	if _, err := f.v.Verify(context.Background(), evidence(f.doc(t, nil)), enclave.Policy{}); !errors.Is(err, enclave.ErrInvalidPolicy) {
		t.Fatalf("Verify(empty policy) = %v, want ErrInvalidPolicy", err)
	}
}

// TestAWSRoot: the production verifier trusts exactly the pinned AWS root,
// and so refuses the test PKI's documents.
func TestAWSRoot(t *testing.T) {
	root, err := nitro.AWSRoot()
	if err != nil {
		t.Fatal(err)
	}
	if root.Subject.CommonName != "aws.nitro-enclaves" || !root.IsCA {
		t.Fatalf("AWS root %s", root.Subject)
	}
	if _, err := hex.DecodeString(nitro.AWSRootFingerprint); err != nil || len(nitro.AWSRootFingerprint) != 64 {
		t.Fatalf("fingerprint %q", nitro.AWSRootFingerprint)
	}
	f := newFixture(t)
	cfg := nitro.DefaultConfig()
	cfg.Clock = f.clock
	v, err := nitro.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), evidence(f.doc(t, nil)), allowA0); !errors.Is(err, nitro.ErrWrongChain) {
		t.Fatalf("AWS-rooted verifier on a test document: %v, want ErrWrongChain", err)
	}
}

func TestConfigValidate(t *testing.T) {
	err := nitro.Config{}.Validate()
	for _, want := range []string{"Roots", "Clock", "MaxAge"} {
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("Validate() = %v, want a problem with %s", err, want)
		}
	}
}
