package gcpcs_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/gcpcs"
	"github.com/coterie-mpc/coterie/enclave/gcpcs/gcpcstest"
)

var start = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// digest is the test workload's image digest.
var digest = bytes.Repeat([]byte{0xd1}, enclave.ImageDigestSize)

func digestClaim(d []byte) string { return "sha256:" + hex.EncodeToString(d) }

func reportData() []byte { return bytes.Repeat([]byte{0x5d}, enclave.MaxReportData) }

type fixture struct {
	iss   *gcpcstest.Issuer
	clock *clock.Fake
	v     *gcpcs.Verifier
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{iss: gcpcstest.NewIssuer(t), clock: clock.NewFake(start.Add(time.Minute))}
	cfg := gcpcs.DefaultConfig()
	// The client trusts every test issuer's server (httptest's one test
	// certificate), so that only the policy decides which issuer counts.
	cfg.HTTPClient, cfg.Clock = f.iss.Server.Client(), f.clock
	v, err := gcpcs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.v = v
	return f
}

// policy admits the test digest in tokens of the fixture's issuer.
func (f *fixture) policy() enclave.Policy {
	return enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindConfidentialSpace, Measurement: digest, Issuer: f.iss.URL()}}}
}

// spec returns a genuine token's spec: issued at start for Coterie's
// audience, the test digest, and the report data's nonces.
func spec(t testing.TB) gcpcstest.Spec {
	ns, err := gcpcs.Nonces(reportData())
	if err != nil {
		t.Fatal(err)
	}
	return gcpcstest.Spec{Audience: gcpcs.Audience, IssuedAt: start, ImageDigest: digestClaim(digest), Nonces: ns}
}

func evidence(token string) []byte {
	return enclave.AppendEvidence(nil, enclave.KindConfidentialSpace, []byte(token))
}

func TestVerifyGenuine(t *testing.T) {
	f := newFixture(t)
	id, err := f.v.Verify(context.Background(), evidence(f.iss.Token(t, spec(t))), f.policy())
	if err != nil {
		t.Fatal(err)
	}
	if id.Kind != enclave.KindConfidentialSpace || !bytes.Equal(id.Measurement, digest) || id.Debug || !bytes.Equal(id.ReportData, reportData()) {
		t.Fatalf("identity %s report data %x", id, id.ReportData)
	}
	// The nonces in another order, beside a nonce of someone else's.
	s := spec(t)
	s.Nonces = []string{"someone-else's-nonce", s.Nonces[1], s.Nonces[0]}
	if _, err := f.v.Verify(context.Background(), evidence(f.iss.Token(t, s)), f.policy()); err != nil {
		t.Fatalf("reordered nonces: %v", err)
	}
}

// TestVerifyRefusals: each way a token can be refused gets its own error,
// which also matches the enclave package's category.
func TestVerifyRefusals(t *testing.T) {
	f := newFixture(t)
	other := gcpcstest.NewIssuer(t)
	allowDigest := f.policy()
	edit := func(change func(*gcpcstest.Spec)) gcpcstest.Spec {
		s := spec(t)
		change(&s)
		return s
	}
	for _, tc := range []struct {
		name     string
		token    string
		policy   enclave.Policy
		want     error
		category error
	}{
		{"bad signature", f.iss.TokenSignedBy(t, spec(t), gcpcstest.NewKey(t)), allowDigest, gcpcs.ErrBadSignature, enclave.ErrEvidenceUnverified},
		{"changed claims", func() string {
			parts := strings.Split(f.iss.Token(t, spec(t)), ".")
			parts[1] = strings.Split(f.iss.Token(t, edit(func(s *gcpcstest.Spec) { s.ImageDigest = digestClaim(make([]byte, 32)) })), ".")[1]
			return strings.Join(parts, ".")
		}(), allowDigest, gcpcs.ErrBadSignature, enclave.ErrEvidenceUnverified},
		// other's keys are within reach of the verifier's client: only the
		// policy keeps them out.
		{"an issuer the policy does not name", other.Token(t, spec(t)), allowDigest, gcpcs.ErrWrongIssuer, enclave.ErrEvidenceUnverified},
		{"another issuer's key", other.Token(t, edit(func(s *gcpcstest.Spec) { s.Issuer = f.iss.URL() })), allowDigest,
			gcpcs.ErrBadSignature, enclave.ErrEvidenceUnverified},
		{"Google's issuer named, which the policy does not name", f.iss.Token(t, edit(func(s *gcpcstest.Spec) { s.Issuer = gcpcs.GoogleIssuer })),
			allowDigest, gcpcs.ErrWrongIssuer, enclave.ErrEvidenceUnverified},
		{"a blank issuer", f.iss.Token(t, edit(func(s *gcpcstest.Spec) { s.Issuer = " " })), allowDigest,
			gcpcs.ErrWrongIssuer, enclave.ErrEvidenceUnverified},
		{"wrong audience", f.iss.Token(t, edit(func(s *gcpcstest.Spec) { s.Audience = "https://elsewhere" })), allowDigest,
			gcpcs.ErrWrongAudience, enclave.ErrEvidenceUnverified},
		{"expired", f.iss.Token(t, edit(func(s *gcpcstest.Spec) { s.IssuedAt = start.Add(-2 * time.Hour) })), allowDigest,
			gcpcs.ErrExpired, enclave.ErrEvidenceUnverified},
		{"issued in the future", f.iss.Token(t, edit(func(s *gcpcstest.Spec) { s.IssuedAt = start.Add(time.Hour) })), allowDigest,
			gcpcs.ErrExpired, enclave.ErrEvidenceUnverified},
		{"not confidential space", f.iss.Token(t, edit(func(s *gcpcstest.Spec) { s.SWName = "GCE" })), allowDigest,
			gcpcs.ErrNotConfidentialSpace, enclave.ErrEvidenceUnverified},
		{"no secure boot", f.iss.Token(t, edit(func(s *gcpcstest.Spec) { s.InsecureBoot = true })), allowDigest,
			gcpcs.ErrNotConfidentialSpace, enclave.ErrEvidenceUnverified},
		{"image not STABLE", f.iss.Token(t, edit(func(s *gcpcstest.Spec) { s.SupportAttributes = []string{"USABLE"} })), allowDigest,
			gcpcs.ErrNotConfidentialSpace, enclave.ErrEvidenceUnverified},
		{"hardware model not allowed", f.iss.Token(t, edit(func(s *gcpcstest.Spec) { s.HWModel = "GCP_SHIELDED_VM" })), allowDigest,
			gcpcs.ErrNotConfidentialSpace, enclave.ErrEvidenceUnverified},
		{"no report data in the nonces", f.iss.Token(t, edit(func(s *gcpcstest.Spec) { s.Nonces = []string{"a-random-nonce-1234"} })), allowDigest,
			gcpcs.ErrNonceMismatch, enclave.ErrEvidenceUnverified},
		{"half the report data", f.iss.Token(t, edit(func(s *gcpcstest.Spec) { s.Nonces = s.Nonces[:1] })), allowDigest,
			gcpcs.ErrNonceMismatch, enclave.ErrEvidenceUnverified},
		{"debug image", f.iss.Token(t, edit(func(s *gcpcstest.Spec) { s.DebugStatus = "enabled" })), allowDigest,
			gcpcs.ErrDebugMode, enclave.ErrNotAllowed},
		{"digest not allowed", f.iss.Token(t, edit(func(s *gcpcstest.Spec) { s.ImageDigest = digestClaim(bytes.Repeat([]byte{2}, 32)) })), allowDigest,
			gcpcs.ErrDigestNotAllowed, enclave.ErrNotAllowed},
		{"no digest", f.iss.Token(t, edit(func(s *gcpcstest.Spec) { s.ImageDigest = "" })), allowDigest,
			gcpcs.ErrMalformed, enclave.ErrMalformedEvidence},
		{"not a JWT", "not.a-jwt", allowDigest, gcpcs.ErrMalformed, enclave.ErrMalformedEvidence},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.v.Verify(context.Background(), evidence(tc.token), tc.policy)
			if !errors.Is(err, tc.want) || !errors.Is(err, tc.category) {
				t.Fatalf("Verify = %v, want %v and %v", err, tc.want, tc.category)
			}
			t.Log(err)
		})
	}
	if n := other.KeyFetches.Load(); n != 0 {
		t.Fatalf("the keys of an issuer the policy does not name were fetched %d times", n)
	}
}

// TestIssuersFromPolicy: the policy given to Verify, not the verifier's
// configuration, names the issuers whose tokens count. A token of an
// issuer no rule names is refused before its keys are fetched, even when
// the node could fetch them; naming the issuer in a new policy admits it,
// and a rule without an issuer names Google's only.
func TestIssuersFromPolicy(t *testing.T) {
	f := newFixture(t)
	other := gcpcstest.NewIssuer(t)
	tok := evidence(other.Token(t, spec(t)))
	for _, p := range []enclave.Policy{
		f.policy(),
		{Allow: []enclave.Rule{{Kind: enclave.KindConfidentialSpace, Measurement: digest}}},
		// A rule of another kind names no issuer either.
		{Allow: []enclave.Rule{{Kind: enclave.KindSGX, Measurement: digest}}},
	} {
		if _, err := f.v.Verify(context.Background(), tok, p); !errors.Is(err, gcpcs.ErrWrongIssuer) {
			t.Fatalf("Verify under %v = %v, want ErrWrongIssuer", p.Allow, err)
		}
	}
	if n := other.KeyFetches.Load(); n != 0 {
		t.Fatalf("an issuer no rule named had its keys fetched %d times", n)
	}
	p := f.policy()
	p.Allow = append(p.Allow, enclave.Rule{Kind: enclave.KindConfidentialSpace, Measurement: digest, Issuer: other.URL()})
	if _, err := f.v.Verify(context.Background(), tok, p); err != nil {
		t.Fatalf("with the issuer in the policy: %v", err)
	}
	if _, err := f.v.Verify(context.Background(), evidence(f.iss.Token(t, spec(t))), p); err != nil {
		t.Fatalf("the first issuer, still in the policy: %v", err)
	}
}

// TestRulesBindIssuerAndDigest: a rule admits its own digest in its own
// issuer's tokens, and its own hardware models; one rule's issuer does not
// lend trust to another rule's digest.
func TestRulesBindIssuerAndDigest(t *testing.T) {
	f := newFixture(t)
	other := gcpcstest.NewIssuer(t)
	digest2 := bytes.Repeat([]byte{0xd2}, enclave.ImageDigestSize)
	p := enclave.Policy{Allow: []enclave.Rule{
		{Kind: enclave.KindConfidentialSpace, Measurement: digest, Issuer: f.iss.URL()},
		{Kind: enclave.KindConfidentialSpace, Measurement: digest2, Issuer: other.URL(), HardwareModels: []string{"GCP_INTEL_TDX"}},
	}}
	with := func(i *gcpcstest.Issuer, d []byte, hw string) []byte {
		s := spec(t)
		s.ImageDigest, s.HWModel = digestClaim(d), hw
		return evidence(i.Token(t, s))
	}
	for _, tc := range []struct {
		name     string
		evidence []byte
		want     error
	}{
		{"first issuer, its digest", with(f.iss, digest, "GCP_AMD_SEV"), nil},
		{"first issuer, TDX by default", with(f.iss, digest, "GCP_INTEL_TDX"), nil},
		{"second issuer, its digest and model", with(other, digest2, "GCP_INTEL_TDX"), nil},
		{"first issuer, the second's digest", with(f.iss, digest2, "GCP_AMD_SEV"), gcpcs.ErrDigestNotAllowed},
		{"second issuer, the first's digest", with(other, digest, "GCP_INTEL_TDX"), gcpcs.ErrDigestNotAllowed},
		{"second issuer, a model its rule does not name", with(other, digest2, "GCP_AMD_SEV"), gcpcs.ErrNotConfidentialSpace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.v.Verify(context.Background(), tc.evidence, p)
			if (tc.want == nil && err != nil) || !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDebugAllowed(t *testing.T) {
	f := newFixture(t)
	s := spec(t)
	s.DebugStatus = "enabled"
	p := f.policy()
	p.Allow[0].AllowDebug = true
	if id, err := f.v.Verify(context.Background(), evidence(f.iss.Token(t, s)), p); err != nil || !id.Debug {
		t.Fatalf("Verify = %s, %v; want a debug identity", id, err)
	}
}

// TestKeysCached: the issuer's keys are fetched once, kept for KeysTTL on
// the clock, and fetched again after it.
func TestKeysCached(t *testing.T) {
	f := newFixture(t)
	for range 3 {
		s := spec(t)
		s.IssuedAt = f.clock.Now()
		if _, err := f.v.Verify(context.Background(), evidence(f.iss.Token(t, s)), f.policy()); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.iss.KeyFetches.Load(); n != 1 {
		t.Fatalf("%d key fetches for three tokens, want 1", n)
	}
	f.clock.Advance(gcpcs.DefaultConfig().KeysTTL)
	s := spec(t)
	s.IssuedAt = f.clock.Now()
	if _, err := f.v.Verify(context.Background(), evidence(f.iss.Token(t, s)), f.policy()); err != nil {
		t.Fatal(err)
	}
	if n := f.iss.KeyFetches.Load(); n != 2 {
		t.Fatalf("%d key fetches after the TTL, want 2", n)
	}
}

// TestKeysDuringAnOutage: when the issuer's key set fails, the cached key
// still serves, and the node asks again at most once per minute however
// many tokens arrive.
func TestKeysDuringAnOutage(t *testing.T) {
	f := newFixture(t)
	verify := func() error {
		s := spec(t)
		s.IssuedAt = f.clock.Now()
		_, err := f.v.Verify(context.Background(), evidence(f.iss.Token(t, s)), f.policy())
		return err
	}
	if err := verify(); err != nil {
		t.Fatal(err)
	}
	f.iss.Down.Store(true)
	f.clock.Advance(gcpcs.DefaultConfig().KeysTTL)
	for range 5 {
		if err := verify(); err != nil {
			t.Fatalf("with the issuer down and the key cached: %v", err)
		}
	}
	if n := f.iss.KeyFetches.Load(); n != 2 {
		t.Fatalf("%d key fetches, want 2: one at first, one failed refresh, none more within a minute", n)
	}
}

// TestKeysPerIssuer: each issuer has its own key cache and fetch bound:
// one issuer's outage neither blocks another's keys nor spends their
// once-a-minute fetch.
func TestKeysPerIssuer(t *testing.T) {
	f := newFixture(t)
	other := gcpcstest.NewIssuer(t)
	p := f.policy()
	p.Allow = append(p.Allow, enclave.Rule{Kind: enclave.KindConfidentialSpace, Measurement: digest, Issuer: other.URL()})
	verify := func(i *gcpcstest.Issuer) error {
		s := spec(t)
		s.IssuedAt = f.clock.Now()
		_, err := f.v.Verify(context.Background(), evidence(i.Token(t, s)), p)
		return err
	}
	for _, i := range []*gcpcstest.Issuer{f.iss, other, f.iss, other} {
		if err := verify(i); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := f.iss.KeyFetches.Load(), other.KeyFetches.Load(); a != 1 || b != 1 {
		t.Fatalf("key fetches %d and %d, want one per issuer", a, b)
	}
	f.iss.Down.Store(true)
	f.clock.Advance(gcpcs.DefaultConfig().KeysTTL)
	for range 3 {
		if err := verify(f.iss); err != nil {
			t.Fatalf("the first issuer down, its key cached: %v", err)
		}
		if err := verify(other); err != nil {
			t.Fatalf("the other issuer: %v", err)
		}
	}
	if a, b := f.iss.KeyFetches.Load(), other.KeyFetches.Load(); a != 2 || b != 2 {
		t.Fatalf("key fetches %d and %d after the TTL, want 2 each: one refresh per issuer", a, b)
	}
}

// TestClockSkew: a token stamped a few seconds ahead of this node's clock,
// as the issuer's clock may be, verifies.
func TestClockSkew(t *testing.T) {
	f := newFixture(t)
	s := spec(t)
	s.IssuedAt = f.clock.Now().Add(10 * time.Second)
	if _, err := f.v.Verify(context.Background(), evidence(f.iss.Token(t, s)), f.policy()); err != nil {
		t.Fatalf("a token 10 s ahead: %v", err)
	}
}

// TestLauncherEvidence: the Attester asks the launcher's socket for a token
// with the audience and the report data's nonces, and the verifier admits
// what it returns.
func TestLauncherEvidence(t *testing.T) {
	f := newFixture(t)
	var asked gcpcstest.LauncherRequest
	sock := gcpcstest.NewLauncher(t, func(r gcpcstest.LauncherRequest) string {
		asked = r
		s := spec(t)
		s.Audience, s.Nonces = r.Audience, r.Nonces
		return f.iss.Token(t, s)
	})
	a := gcpcs.NewAttester(gcpcs.NewLauncher(sock), f.v)
	ev, err := a.Evidence(context.Background(), reportData())
	if err != nil {
		t.Fatal(err)
	}
	if asked.Audience != gcpcs.Audience || asked.TokenType != "OIDC" || len(asked.Nonces) != 2 {
		t.Fatalf("the launcher was asked %+v", asked)
	}
	for _, n := range asked.Nonces {
		if len(n) < 10 || len(n) > 74 {
			t.Fatalf("nonce of %d bytes is outside the launcher's 10 to 74", len(n))
		}
	}
	id, err := a.Verify(context.Background(), ev, f.policy())
	if err != nil || !bytes.Equal(id.ReportData, reportData()) {
		t.Fatalf("Verify = %s, %v", id, err)
	}
	if _, err := a.Evidence(context.Background(), make([]byte, 65)); !errors.Is(err, enclave.ErrReportDataTooLong) {
		t.Fatalf("Evidence(65 bytes) = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	err := gcpcs.Config{}.Validate()
	for _, want := range []string{"KeysTTL", "Clock"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want a problem with %s", err, want)
		}
	}
}
