package gcpcs_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/gcpcs"
)

// FuzzReportData: the nonce decoder never panics, refuses with
// ErrNonceMismatch, and the nonces Nonces makes decode to the padded
// report data.
func FuzzReportData(f *testing.F) {
	f.Add([]byte("report"), "0abc", "1abc")
	f.Add(make([]byte, 64), "", "x")
	f.Fuzz(func(t *testing.T, rd []byte, a, b string) {
		if rd2, err := gcpcs.ReportData([]string{a, b}); err != nil && !errors.Is(err, gcpcs.ErrNonceMismatch) {
			t.Fatalf("ReportData error %v", err)
		} else if err == nil && len(rd2) != enclave.MaxReportData {
			t.Fatalf("ReportData returned %d bytes", len(rd2))
		}
		ns, err := gcpcs.Nonces(rd)
		if err != nil {
			if len(rd) <= enclave.MaxReportData {
				t.Fatal(err)
			}
			return
		}
		got, err := gcpcs.ReportData(append(ns, a, b))
		want, _ := enclave.PadReportData(rd)
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("round trip %x, want %x", got, want)
		}
	})
}

// FuzzVerify: any evidence is refused with a typed error and never
// panics the verifier.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.iss.Token(f, spec(f)))
	// Google's own tokens, of an issuer the fixture's policy does not name.
	for _, name := range []string{"oidc-token-flare.jwt", "pki-token-oak.jwt"} {
		f.Add(strings.TrimSpace(string(readTestdata(f, name))))
	}
	f.Add("e30.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, token string) {
		_, err := fx.v.Verify(context.Background(), evidence(token), fx.policy())
		if err != nil && !errors.Is(err, enclave.ErrMalformedEvidence) && !errors.Is(err, enclave.ErrEvidenceUnverified) &&
			!errors.Is(err, enclave.ErrNotAllowed) && !errors.Is(err, gcpcs.ErrKeysUnavailable) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
