package gcpcstest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// STS is a test Security Token Service for one workload identity pool
// provider whose issuer is a test Issuer. Like Google's, it exchanges an
// attestation token for an access token only if the token verifies with
// the issuer's key, is made for the provider, and satisfies the provider's
// attribute condition, here:
//
//	assertion.swname == 'CONFIDENTIAL_SPACE' && assertion.submods.container.image_digest in Digests
//
// Otherwise it answers 400 with an OAuth error, as STS does.
type STS struct {
	Server   *httptest.Server
	issuer   *Issuer
	provider string
	digests  []string

	mu     sync.Mutex
	tokens map[string]bool
}

// NewSTS starts a test STS for provider, admitting tokens of the images
// whose digests ("sha256:HEX") are given. It stops when t ends.
func NewSTS(t testing.TB, issuer *Issuer, provider string, digests ...string) *STS {
	t.Helper()
	s := &STS{issuer: issuer, provider: provider, digests: digests, tokens: make(map[string]bool)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/token", s.exchange)
	s.Server = httptest.NewTLSServer(mux)
	t.Cleanup(s.Server.Close)
	return s
}

// URL is the token exchange endpoint.
func (s *STS) URL() string { return s.Server.URL + "/v1/token" }

// Issued reports whether the STS issued accessToken.
func (s *STS) Issued(accessToken string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[accessToken]
}

func (s *STS) exchange(w http.ResponseWriter, r *http.Request) {
	refuse := func(code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if err := r.ParseForm(); err != nil {
		refuse("invalid_request", "the request is not a form")
		return
	}
	f := r.PostForm
	switch {
	case f.Get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange",
		f.Get("requested_token_type") != "urn:ietf:params:oauth:token-type:access_token",
		f.Get("subject_token_type") != "urn:ietf:params:oauth:token-type:jwt":
		refuse("invalid_request", "unsupported grant or token type")
		return
	case f.Get("audience") != s.provider:
		refuse("invalid_target", "the audience names no provider of this pool")
		return
	case !slices.Contains(strings.Fields(f.Get("scope")), "https://www.googleapis.com/auth/cloud-platform"):
		refuse("invalid_scope", "the scope is not cloud-platform")
		return
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(f.Get("subject_token"), claims, func(*jwt.Token) (any, error) { return &s.issuer.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(s.issuer.URL()), jwt.WithAudience(s.provider), jwt.WithExpirationRequired())
	if err != nil {
		refuse("invalid_grant", "the subject token does not verify")
		return
	}
	container, _ := claims["submods"].(map[string]any)["container"].(map[string]any)
	digest, _ := container["image_digest"].(string)
	if claims["swname"] != "CONFIDENTIAL_SPACE" || !slices.Contains(s.digests, digest) {
		refuse("unauthorized_client", "The given credential is rejected by the attribute condition.")
		return
	}
	token := make([]byte, 24)
	rand.Read(token)
	access := "test-access-" + hex.EncodeToString(token)
	s.mu.Lock()
	s.tokens[access] = true
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": access, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
		"token_type": "Bearer", "expires_in": 3600,
	})
}

// KMS is a test Cloud KMS REST endpoint with one symmetric key, named
// KeyName. It answers encrypt and decrypt only with an access token its
// STS issued (401 UNAUTHENTICATED otherwise), and checks and sets the
// CRC32C fields as Cloud KMS does.
type KMS struct {
	Server  *httptest.Server
	KeyName string
	sts     *STS
	aead    cipher.AEAD

	// AlterPlaintext, when set before a call, changes the plaintext that
	// decrypt answers (with a matching checksum): a KMS that lies.
	AlterPlaintext func([]byte) []byte
	// BadChecksum, when set before a call, makes decrypt answer a wrong
	// plaintextCrc32c: an answer corrupted on the way.
	BadChecksum bool

	mu   sync.Mutex
	seen [][]byte
}

// NewKMS starts a test Cloud KMS for keyName that trusts sts's tokens. It
// stops when t ends.
func NewKMS(t testing.TB, sts *STS, keyName string) *KMS {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	k := &KMS{KeyName: keyName, sts: sts, aead: aead}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/", k.serve)
	k.Server = httptest.NewTLSServer(mux)
	t.Cleanup(k.Server.Close)
	return k
}

// URL is the endpoint's base URL.
func (k *KMS) URL() string { return k.Server.URL }

// Plaintexts returns every plaintext the KMS encrypted, for tests that
// look for them where they must not be.
func (k *KMS) Plaintexts() [][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.seen)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// kmsRequest holds both methods' fields. Checksums are int64 as proto3
// JSON writes them, decimal strings; empty means absent.
type kmsRequest struct {
	Plaintext     []byte `json:"plaintext"`
	Ciphertext    []byte `json:"ciphertext"`
	AAD           []byte `json:"additionalAuthenticatedData"`
	PlaintextCRC  string `json:"plaintextCrc32c"`
	CiphertextCRC string `json:"ciphertextCrc32c"`
	AADCRC        string `json:"additionalAuthenticatedDataCrc32c"`
}

func (k *KMS) serve(w http.ResponseWriter, r *http.Request) {
	apiError := func(code int, status, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "status": status, "message": msg}})
	}
	access, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !k.sts.Issued(access) {
		apiError(http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
		return
	}
	name, method, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/"), ":")
	if name != k.KeyName {
		apiError(http.StatusNotFound, "NOT_FOUND", name+" not found.")
		return
	}
	var in kmsRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		apiError(http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received.")
		return
	}
	sum := func(b []byte) string { return strconv.FormatUint(uint64(crc32.Checksum(b, castagnoli)), 10) }
	mismatch := func(b []byte, c string) bool { return c != "" && c != sum(b) }
	if mismatch(in.Plaintext, in.PlaintextCRC) || mismatch(in.Ciphertext, in.CiphertextCRC) || mismatch(in.AAD, in.AADCRC) {
		apiError(http.StatusBadRequest, "INVALID_ARGUMENT", "The checksum in field is not the checksum of the data.")
		return
	}
	out := map[string]any{}
	switch method {
	case "encrypt":
		k.mu.Lock()
		k.seen = append(k.seen, slices.Clone(in.Plaintext))
		k.mu.Unlock()
		nonce := make([]byte, k.aead.NonceSize())
		rand.Read(nonce)
		ct := k.aead.Seal(nonce, nonce, in.Plaintext, in.AAD)
		out["name"] = k.KeyName + "/cryptoKeyVersions/1"
		out["ciphertext"] = ct
		out["ciphertextCrc32c"] = sum(ct)
		out["verifiedPlaintextCrc32c"] = in.PlaintextCRC != ""
		out["verifiedAdditionalAuthenticatedDataCrc32c"] = in.AADCRC != ""
	case "decrypt":
		ns := k.aead.NonceSize()
		if len(in.Ciphertext) < ns {
			apiError(http.StatusBadRequest, "INVALID_ARGUMENT", "Decryption failed: the ciphertext is invalid.")
			return
		}
		pt, err := k.aead.Open(nil, in.Ciphertext[:ns], in.Ciphertext[ns:], in.AAD)
		if err != nil {
			apiError(http.StatusBadRequest, "INVALID_ARGUMENT", "Decryption failed: the ciphertext is invalid.")
			return
		}
		if k.AlterPlaintext != nil {
			pt = k.AlterPlaintext(pt)
		}
		c := sum(pt)
		if k.BadChecksum {
			c = sum(append(slices.Clone(pt), 0))
		}
		out["plaintext"] = pt
		out["plaintextCrc32c"] = c
	default:
		apiError(http.StatusNotFound, "NOT_FOUND", "no method "+method)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// Storage is a test Cloud Storage JSON API with one bucket, Bucket: media
// downloads and uploads of objects, answered only for access tokens its
// STS issued (401 otherwise); another bucket is 403.
type Storage struct {
	Server *httptest.Server
	Bucket string
	sts    *STS

	mu      sync.Mutex
	objects map[string][]byte
}

// NewStorage starts a test Cloud Storage for bucket that trusts sts's
// tokens. It stops when t ends.
func NewStorage(t testing.TB, sts *STS, bucket string) *Storage {
	t.Helper()
	s := &Storage{Bucket: bucket, sts: sts, objects: make(map[string][]byte)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /storage/v1/b/{bucket}/o/{object}", s.get)
	mux.HandleFunc("POST /upload/storage/v1/b/{bucket}/o", s.put)
	s.Server = httptest.NewTLSServer(mux)
	t.Cleanup(s.Server.Close)
	return s
}

// URL is the JSON API's base URL.
func (s *Storage) URL() string { return s.Server.URL }

// Object returns the stored object of name, and whether there is one.
func (s *Storage) Object(name string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.objects[name]
	return b, ok
}

// authorized answers 401 or 403 and says false for a request that may not
// use the bucket.
func (s *Storage) authorized(w http.ResponseWriter, r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || !s.sts.Issued(token):
		http.Error(w, `{"error": {"code": 401, "message": "Invalid Credentials"}}`, http.StatusUnauthorized)
		return false
	case r.PathValue("bucket") != s.Bucket:
		http.Error(w, `{"error": {"code": 403, "message": "the caller does not have storage.objects access"}}`, http.StatusForbidden)
		return false
	}
	return true
}

func (s *Storage) get(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	if r.URL.Query().Get("alt") != "media" {
		http.Error(w, "only media downloads", http.StatusBadRequest)
		return
	}
	b, ok := s.Object(r.PathValue("object"))
	if !ok {
		http.Error(w, `{"error": {"code": 404, "message": "No such object"}}`, http.StatusNotFound)
		return
	}
	_, _ = w.Write(b)
}

func (s *Storage) put(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	q := r.URL.Query()
	if q.Get("uploadType") != "media" || q.Get("name") == "" {
		http.Error(w, "only media uploads with a name", http.StatusBadRequest)
		return
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.objects[q.Get("name")] = b
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"bucket": s.Bucket, "name": q.Get("name"), "size": fmt.Sprint(len(b))})
}
