// Package gcpcstest is for tests only: a token issuer with the shape of
// the Confidential Space attestation service — an OpenID configuration, a
// JWKS, RS256 tokens with its claims — on a local TLS test server, and the
// launcher's token API on a unix socket. Tokens it signs verify only under
// a policy whose confidential-space rule names its issuer.
package gcpcstest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// Issuer is a test attestation service.
type Issuer struct {
	Server *httptest.Server
	key    *rsa.PrivateKey
	kid    string
	// KeyFetches counts the requests for the key set.
	KeyFetches atomic.Int32
	// Down makes the key set answer 503, as an issuer in an outage.
	Down atomic.Bool
}

// NewIssuer starts a test issuer; it stops when t ends.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &Issuer{key: key, kid: "test-key-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss.URL(), "jwks_uri": iss.URL() + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		iss.KeyFetches.Add(1)
		if iss.Down.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &iss.key.PublicKey, KeyID: iss.kid, Algorithm: "RS256", Use: "sig"},
		}})
	})
	iss.Server = httptest.NewTLSServer(mux)
	t.Cleanup(iss.Server.Close)
	return iss
}

// URL is the issuer's identifier.
func (i *Issuer) URL() string { return i.Server.URL }

// Spec describes a token.
type Spec struct {
	Issuer      string // the issuer's URL when empty
	Audience    string
	IssuedAt    time.Time
	Lifetime    time.Duration // one hour when zero
	SWName      string        // CONFIDENTIAL_SPACE when empty
	HWModel     string        // GCP_AMD_SEV when empty
	DebugStatus string        // disabled-since-boot when empty
	ImageDigest string
	Nonces      []string
	// SupportAttributes of the Confidential Space image: LATEST, STABLE
	// and USABLE when nil.
	SupportAttributes []string
	// InsecureBoot makes secboot false: a VM booted without Secure Boot.
	InsecureBoot bool
}

// Token returns a token of s signed by the issuer's key.
func (i *Issuer) Token(t testing.TB, s Spec) string {
	t.Helper()
	return i.sign(t, s, i.key, i.kid)
}

// TokenSignedBy returns a token of s signed by another key under the
// issuer's kid, whose signature must not verify.
func (i *Issuer) TokenSignedBy(t testing.TB, s Spec, key *rsa.PrivateKey) string {
	t.Helper()
	return i.sign(t, s, key, i.kid)
}

func (i *Issuer) sign(t testing.TB, s Spec, key *rsa.PrivateKey, kid string) string {
	t.Helper()
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	if s.Lifetime == 0 {
		s.Lifetime = time.Hour
	}
	supportAttributes := s.SupportAttributes
	if supportAttributes == nil {
		supportAttributes = []string{"LATEST", "STABLE", "USABLE"}
	}
	claims := jwt.MapClaims{
		"iss": def(s.Issuer, i.URL()), "aud": s.Audience, "sub": "https://www.googleapis.com/compute/v1/projects/p/zones/z/instances/test",
		"iat": s.IssuedAt.Unix(), "nbf": s.IssuedAt.Unix(), "exp": s.IssuedAt.Add(s.Lifetime).Unix(),
		"swname": def(s.SWName, "CONFIDENTIAL_SPACE"), "hwmodel": def(s.HWModel, "GCP_AMD_SEV"),
		"dbgstat": def(s.DebugStatus, "disabled-since-boot"), "eat_nonce": s.Nonces, "secboot": !s.InsecureBoot,
		"submods": map[string]any{
			"container": map[string]any{
				"image_reference": "europe-docker.pkg.dev/p/coterie/coterie:test", "image_digest": s.ImageDigest,
			},
			"confidential_space": map[string]any{"support_attributes": supportAttributes},
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = kid
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// NewKey returns a fresh RSA key, for TokenSignedBy.
func NewKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// LauncherRequest is what a workload asked the test launcher for.
type LauncherRequest struct {
	Audience  string   `json:"audience"`
	TokenType string   `json:"token_type"`
	Nonces    []string `json:"nonces"`
}

// NewLauncher serves the launcher's POST /v1/token on a unix socket in a
// temporary directory and returns the socket's path. Each request is
// answered by answer. It stops when t ends.
func NewLauncher(t testing.TB, answer func(LauncherRequest) string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "teeserver.sock")
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req LauncherRequest
		if r.Method != http.MethodPost || r.URL.Path != "/v1/token" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(answer(req)))
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return path
}
