package gcpcs_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/gcpcs"
)

// googleJWKSURI is the jwks_uri of Google's attestation service.
const googleJWKSURI = "https://www.googleapis.com/service_accounts/v1/metadata/jwk/signer@confidentialspace-sign.iam.gserviceaccount.com"

// TestGenuineTokens reads two tokens that Google's attestation service
// issued to other projects' debug workloads (testdata/README.md says
// where they were published) with Claims, and verifies each with
// Verify, the clock at its iat and Google's issuer serving the key that
// signed it. Verify refuses each only for its audience, another
// project's: golang-jwt checks the claims only once the signature has
// verified, and the same token with its signature altered is refused as
// ErrBadSignature.
func TestGenuineTokens(t *testing.T) {
	for _, tc := range []struct {
		file     string
		keys     func(*testing.T, string) []byte
		iat      int64
		audience string
		digest   string
		nonce    string
	}{
		{"oidc-token-flare.jwt", func(t *testing.T, _ string) []byte { return readTestdata(t, "oidc-token-flare-jwks.json") },
			1730678012, "https://sts.google.com", "af738fddd31ebe48ed4d8ec936f242127850d6b01aa68a1fc9bdeb9c063feb7c",
			"0x000000000000000000000000000000000000dEaD"},
		{"pki-token-oak.jwt", leafKeys, 1750688551, "https://echo.oak.dev",
			"313b8a83d3c8bfc9abcffee4f538424473e2705383a7e46f16d159faf0e5ef34", "a nonce between 10 and 74 characters"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			token := strings.TrimSpace(string(readTestdata(t, tc.file)))
			var c gcpcs.Claims
			if _, _, err := jwt.NewParser().ParseUnverified(token, &c); err != nil {
				t.Fatal(err)
			}
			if c.Issuer != gcpcs.GoogleIssuer || c.IssuedAt.Unix() != tc.iat || !slices.Equal(c.Audience, jwt.ClaimStrings{tc.audience}) ||
				c.SWName != "CONFIDENTIAL_SPACE" || c.HWModel != "GCP_AMD_SEV" || c.DebugStatus != "enabled" || !c.SecureBoot ||
				c.SubMods.Container.ImageDigest != "sha256:"+tc.digest || !slices.Equal(c.Nonces, []string{tc.nonce}) ||
				c.SubMods.ConfidentialSpace.SupportAttributes != nil {
				t.Fatalf("claims %+v", c)
			}
			digest, _ := hex.DecodeString(tc.digest)
			id, err := c.Identity()
			if err != nil || !bytes.Equal(id.Measurement, digest) || !id.Debug {
				t.Fatalf("Identity() = %s, %v", id, err)
			}
			if _, err := gcpcs.ReportData(c.Nonces); !errors.Is(err, gcpcs.ErrNonceMismatch) {
				t.Fatalf("ReportData(another project's nonce) = %v, want ErrNonceMismatch", err)
			}

			cfg := gcpcs.DefaultConfig()
			cfg.Clock = clock.NewFake(time.Unix(tc.iat, 0))
			cfg.HTTPClient = &http.Client{Transport: googleIssuer{jwks: tc.keys(t, token)}}
			v, err := gcpcs.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			p := enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindConfidentialSpace, Measurement: digest, AllowDebug: true}}}
			if _, err := v.Verify(context.Background(), evidence(token), p); !errors.Is(err, gcpcs.ErrWrongAudience) {
				t.Fatalf("Verify = %v, want ErrWrongAudience", err)
			}
			parts := strings.Split(token, ".")
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			sig[0] ^= 1
			parts[2] = base64.RawURLEncoding.EncodeToString(sig)
			if _, err := v.Verify(context.Background(), evidence(strings.Join(parts, ".")), p); !errors.Is(err, gcpcs.ErrBadSignature) {
				t.Fatalf("Verify(signature altered) = %v, want ErrBadSignature", err)
			}
		})
	}
}

// leafKeys returns a JWKS holding the key of the PKI token's x5c leaf under
// the token's kid, once the leaf chains through the x5c intermediates to
// Google's Confidential Space root at the token's iat.
func leafKeys(t *testing.T, token string) []byte {
	var header struct {
		Kid string   `json:"kid"`
		X5C []string `json:"x5c"`
	}
	var claims jwt.RegisteredClaims
	tok, _, err := jwt.NewParser().ParseUnverified(token, &claims)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(tok.Header)
	if err := json.Unmarshal(b, &header); err != nil || len(header.X5C) == 0 {
		t.Fatalf("header %s: %v", b, err)
	}
	var chain []*x509.Certificate
	for _, s := range header.X5C {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, cert)
	}
	block, _ := pem.Decode(readTestdata(t, "confidential-space-root.pem"))
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	opts := x509.VerifyOptions{Roots: x509.NewCertPool(), Intermediates: x509.NewCertPool(), CurrentTime: claims.IssuedAt.Time,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	opts.Roots.AddCert(root)
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := chain[0].Verify(opts); err != nil {
		t.Fatalf("the x5c leaf does not chain to Google's root: %v", err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: chain[0].PublicKey, KeyID: header.Kid, Algorithm: "RS256", Use: "sig"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return jwks
}

// googleIssuer answers, in process, for Google's attestation service: its
// OpenID configuration and, at its jwks_uri, jwks.
type googleIssuer struct{ jwks []byte }

func (g googleIssuer) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	switch r.URL.String() {
	case gcpcs.GoogleIssuer + "/.well-known/openid-configuration":
		body, _ = json.Marshal(map[string]string{"issuer": gcpcs.GoogleIssuer, "jwks_uri": googleJWKSURI})
	case googleJWKSURI:
		body = g.jwks
	default:
		return &http.Response{StatusCode: http.StatusNotFound, Status: "404 Not Found", Body: http.NoBody, Request: r}, nil
	}
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
