package callback

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// b64 encodes a JWT segment.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestDecodeResponse(t *testing.T) {
	k := testKeys()
	rsaPub, ecPub := &k.handlerRSA.PublicKey, &k.handlerEC.PublicKey
	pubPEM, err := MarshalPublicKeyPEM(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	approve := response("APPROVE", "r1", "")
	validPayload := strings.Split(signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, approve), ".")[1]

	tests := []struct {
		name    string
		body    string
		key     crypto.PublicKey
		kind    Kind
		want    Action
		reason  string
		wantErr error
	}{
		{name: "approve RS256", body: signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, approve), key: rsaPub, want: ActionApprove},
		{name: "approve ES256", body: signClaims(t, jwt.SigningMethodES256, k.handlerEC, approve), key: ecPub, want: ActionApprove},
		{name: "reject keeps reason", body: signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, response("REJECT", "r1", "over limit")), key: rsaPub, want: ActionReject, reason: "over limit"},
		{name: "reason sanitized", body: signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, response("REJECT", "r1", "a\nb")), key: rsaPub, want: ActionReject, reason: "a b"},
		{name: "retry", body: signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, response("RETRY", "r1", "")), key: rsaPub, want: ActionRetry},
		{name: "surrounding whitespace", body: "\n " + signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, approve) + "\r\n", key: rsaPub, want: ActionApprove},
		{name: "ignore for config change", body: signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, response("IGNORE", "r1", "")), key: rsaPub, kind: KindConfigChange, want: ActionIgnore},
		{name: "ignore for transaction", body: signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, response("IGNORE", "r1", "")), key: rsaPub, wantErr: ErrBadAction},
		{name: "unknown action", body: signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, response("MAYBE", "r1", "")), key: rsaPub, wantErr: ErrBadAction},
		{name: "lowercase action", body: signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, response("approve", "r1", "")), key: rsaPub, wantErr: ErrBadAction},
		{name: "missing action", body: signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, response("", "r1", "")), key: rsaPub, wantErr: ErrBadAction},
		{name: "wrong requestId", body: signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, response("APPROVE", "r2", "")), key: rsaPub, wantErr: ErrRequestIDMismatch},
		{name: "missing requestId", body: signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, response("APPROVE", "", "")), key: rsaPub, wantErr: ErrRequestIDMismatch},
		{name: "wrong RSA key", body: signClaims(t, jwt.SigningMethodRS256, k.otherRSA, approve), key: rsaPub, wantErr: ErrBadSignature},
		{name: "wrong EC key", body: signClaims(t, jwt.SigningMethodES256, k.otherEC, approve), key: ecPub, wantErr: ErrBadSignature},
		{name: "tampered payload", body: func() string {
			parts := strings.Split(signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, response("REJECT", "r1", "")), ".")
			parts[1] = validPayload
			return strings.Join(parts, ".")
		}(), key: rsaPub, wantErr: ErrBadSignature},
		{name: "alg none", body: signClaims(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, approve), key: rsaPub, wantErr: ErrAlgorithm},
		{name: "alg none handmade", body: b64(`{"alg":"none","typ":"JWT"}`) + "." + validPayload + ".", key: rsaPub, wantErr: ErrAlgorithm},
		{name: "alg None mixed case", body: b64(`{"alg":"None"}`) + "." + validPayload + ".", key: rsaPub, wantErr: ErrAlgorithm},
		{name: "alg missing", body: b64(`{"typ":"JWT"}`) + "." + validPayload + ".", key: rsaPub, wantErr: ErrAlgorithm},
		{name: "alg unknown", body: b64(`{"alg":"XYZ"}`) + "." + validPayload + ".AAAA", key: rsaPub, wantErr: ErrAlgorithm},
		{name: "HS256 keyed with public PEM", body: signClaims(t, jwt.SigningMethodHS256, pubPEM, approve), key: rsaPub, wantErr: ErrAlgorithm},
		{name: "HS256 keyed with public DER", body: signClaims(t, jwt.SigningMethodHS256, pubDER, approve), key: rsaPub, wantErr: ErrAlgorithm},
		{name: "HS512 with EC key", body: signClaims(t, jwt.SigningMethodHS512, []byte("secret"), approve), key: ecPub, wantErr: ErrAlgorithm},
		{name: "RS384 refused", body: signClaims(t, jwt.SigningMethodRS384, k.handlerRSA, approve), key: rsaPub, wantErr: ErrAlgorithm},
		{name: "PS256 refused", body: signClaims(t, jwt.SigningMethodPS256, k.handlerRSA, approve), key: rsaPub, wantErr: ErrAlgorithm},
		{name: "ES256 against RSA key", body: signClaims(t, jwt.SigningMethodES256, k.handlerEC, approve), key: rsaPub, wantErr: ErrAlgorithm},
		{name: "RS256 against EC key", body: signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, approve), key: ecPub, wantErr: ErrAlgorithm},
		{name: "expired", body: func() string {
			c := response("APPROVE", "r1", "")
			c.IssuedAt = jwt.NewNumericDate(t0.Add(-2 * time.Hour))
			c.ExpiresAt = jwt.NewNumericDate(t0.Add(-time.Hour))
			return signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, c)
		}(), key: rsaPub, wantErr: ErrExpired},
		{name: "expired reject is still an error", body: func() string {
			c := response("REJECT", "r1", "no")
			c.ExpiresAt = jwt.NewNumericDate(t0.Add(-time.Hour))
			c.IssuedAt = nil
			return signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, c)
		}(), key: rsaPub, wantErr: ErrExpired},
		{name: "expired within clock skew", body: func() string {
			c := response("APPROVE", "r1", "")
			c.ExpiresAt = jwt.NewNumericDate(t0.Add(-ClockSkew / 2))
			return signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, c)
		}(), key: rsaPub, want: ActionApprove},
		{name: "no exp accepted", body: func() string {
			c := response("APPROVE", "r1", "")
			c.ExpiresAt = nil
			return signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, c)
		}(), key: rsaPub, want: ActionApprove},
		{name: "issued in the future", body: func() string {
			c := response("APPROVE", "r1", "")
			c.IssuedAt = jwt.NewNumericDate(t0.Add(time.Hour))
			c.ExpiresAt = jwt.NewNumericDate(t0.Add(2 * time.Hour))
			return signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, c)
		}(), key: rsaPub, wantErr: ErrNotYetValid},
		{name: "empty", body: "", key: rsaPub, wantErr: ErrMalformed},
		{name: "html error page", body: "<html>502 Bad Gateway</html>", key: rsaPub, wantErr: ErrMalformed},
		{name: "two segments", body: "a.b", key: rsaPub, wantErr: ErrMalformed},
		{name: "bad base64", body: "!!!.@@@.###", key: rsaPub, wantErr: ErrMalformed},
		{name: "claims not an object", body: b64(`{"alg":"RS256"}`) + "." + b64(`[1,2]`) + ".AAAA", key: rsaPub, wantErr: ErrMalformed},
		{name: "requestId not a string", body: b64(`{"alg":"RS256"}`) + "." + b64(`{"action":"APPROVE","requestId":7}`) + ".AAAA", key: rsaPub, wantErr: ErrMalformed},
		{name: "too large", body: strings.Repeat("a", MaxResponseBytes+1), key: rsaPub, wantErr: ErrResponseTooLarge},
		{name: "unsupported key", body: signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, approve), key: "not a key", wantErr: ErrKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind := tc.kind
			if kind == 0 {
				kind = KindTransaction
			}
			d, err := DecodeResponse([]byte(tc.body), tc.key, expect(kind, "r1"), t0)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if d != (Decision{}) {
					t.Fatalf("failed decode returned decision %+v", d)
				}
				if len(tc.body) > 40 && strings.Contains(err.Error(), strings.TrimSpace(tc.body)) {
					t.Fatalf("error quotes the whole token: %v", err)
				}
				if Retryable(err) != errors.Is(err, ErrResponseTooLarge) {
					t.Fatalf("Retryable(%v) = %v", err, Retryable(err))
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if d.Action != tc.want || d.RequestID != "r1" || d.RejectionReason != tc.reason || d.Auto {
				t.Fatalf("decision = %+v, want %s with reason %q", d, tc.want, tc.reason)
			}
		})
	}
}

// TestDecodeResponseFreshness: an answer needs an iat no older than the
// maximum answer age (unless the node allows answers without one), and a
// requestTokenHash, when present or required, must be this token's.
func TestDecodeResponseFreshness(t *testing.T) {
	k := testKeys()
	maxAge := DefaultConfig().MaxAnswerAge
	issued := func(age time.Duration) func(*responseClaims) {
		return func(c *responseClaims) { c.IssuedAt, c.ExpiresAt = jwt.NewNumericDate(t0.Add(-age)), nil }
	}
	noIAT := func(c *responseClaims) { c.IssuedAt, c.ExpiresAt = nil, nil }
	noIATWithExp := func(c *responseClaims) { c.IssuedAt = nil }
	hashOf := func(token string) func(*responseClaims) {
		return func(c *responseClaims) { c.RequestTokenHash = RequestTokenHash(token) }
	}
	tests := []struct {
		name    string
		edit    func(*responseClaims)
		want    func(*Expected)
		wantErr error
	}{
		{name: "fresh", edit: issued(0)},
		{name: "at the maximum age plus skew", edit: issued(maxAge + ClockSkew)},
		{name: "a second past it", edit: issued(maxAge + ClockSkew + time.Second), wantErr: ErrStaleResponse},
		{name: "an hour old", edit: issued(time.Hour), wantErr: ErrStaleResponse},
		{name: "an hour old, answers without iat allowed", edit: issued(time.Hour), want: func(e *Expected) { e.AllowMissingIAT = true }, wantErr: ErrStaleResponse},
		{name: "an hour old, a longer maximum age", edit: issued(time.Hour), want: func(e *Expected) { e.MaxAge = 2 * time.Hour }},
		{name: "no iat", edit: noIAT, wantErr: ErrStaleResponse},
		{name: "no iat but a valid exp", edit: noIATWithExp, wantErr: ErrStaleResponse},
		{name: "no iat, allowed", edit: noIAT, want: func(e *Expected) { e.AllowMissingIAT = true }},
		{name: "hash of this token", edit: hashOf(testRequestToken)},
		{name: "hash of this token with whitespace around it", edit: hashOf(" " + testRequestToken + "\n"),
			want: func(e *Expected) { e.RequireTokenHash = true }},
		{name: "hash of this token, required", edit: hashOf(testRequestToken), want: func(e *Expected) { e.RequireTokenHash = true }},
		{name: "no hash, not required (protocol v2)", edit: func(*responseClaims) {}},
		{name: "no hash, required", edit: func(*responseClaims) {}, want: func(e *Expected) { e.RequireTokenHash = true }, wantErr: ErrUnboundResponse},
		{name: "hash of another token", edit: hashOf("another.request.token"), wantErr: ErrUnboundResponse},
		{name: "hash of another token, required", edit: hashOf("another.request.token"), want: func(e *Expected) { e.RequireTokenHash = true }, wantErr: ErrUnboundResponse},
		{name: "hash not base64", edit: func(c *responseClaims) { c.RequestTokenHash = "!" }, wantErr: ErrUnboundResponse},
		{name: "no request token to check against", edit: hashOf(testRequestToken), want: func(e *Expected) { e.RequestToken = " " }, wantErr: ErrInvalidRequest},
		{name: "no maximum age", edit: issued(0), want: func(e *Expected) { e.MaxAge = 0 }, wantErr: ErrInvalidConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := response("APPROVE", "r1", "")
			tc.edit(c)
			want := expect(KindTransaction, "r1")
			if tc.want != nil {
				tc.want(&want)
			}
			d, err := DecodeResponse([]byte(signClaims(t, jwt.SigningMethodES256, k.handlerEC, c)), k.handlerEC.Public(), want, t0)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || Retryable(err) || d != (Decision{}) {
					t.Fatalf("%+v, %v; want %v", d, err, tc.wantErr)
				}
				return
			}
			if err != nil || !d.Approved() || d.RequestTokenHash != c.RequestTokenHash {
				t.Fatalf("%+v, %v; want an APPROVE", d, err)
			}
		})
	}
}

func TestRequestTokenHash(t *testing.T) {
	// SHA-256("abc"), unpadded base64url: the value a handler in any
	// language computes from the request body it received.
	const want = "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
	for _, token := range []string{"abc", "abc\n", " abc\r\n"} {
		if got := RequestTokenHash(token); got != want {
			t.Errorf("RequestTokenHash(%q) = %s, want %s", token, got, want)
		}
	}
}

func TestDecodeResponseReasonBounded(t *testing.T) {
	k := testKeys()
	tok := signClaims(t, jwt.SigningMethodRS256, k.handlerRSA, response("REJECT", "r1", strings.Repeat("é", 2000)))
	d, err := DecodeResponse([]byte(tok), &k.handlerRSA.PublicKey, expect(KindTransaction, "r1"), t0)
	if err != nil {
		t.Fatal(err)
	}
	if n := len([]rune(d.RejectionReason)); n != maxReasonLen+1 { // the cut adds one "…"
		t.Fatalf("reason has %d runes", n)
	}
}

func TestEncodeResponseRoundTrip(t *testing.T) {
	k := testKeys()
	for _, key := range []crypto.Signer{k.handlerRSA, k.handlerEC} {
		for _, a := range []Action{ActionApprove, ActionReject, ActionRetry, ActionIgnore} {
			want := Decision{Action: a, RequestID: "req-9", RejectionReason: "because", RequestTokenHash: RequestTokenHash(testRequestToken)}
			tok := mustEncodeResponse(t, want, key, t0)
			got, err := DecodeResponse([]byte(tok), key.Public(), expect(KindConfigChange, "req-9"), t0.Add(30*time.Second))
			if err != nil || got != want {
				t.Fatalf("%T %s: got %+v, %v", key, a, got, err)
			}
			if _, err := DecodeResponse([]byte(tok), key.Public(), expect(KindConfigChange, "req-9"), t0.Add(2*time.Minute)); !errors.Is(err, ErrExpired) {
				t.Fatalf("after ttl: err = %v, want ErrExpired", err)
			}
		}
	}
	if _, err := EncodeResponse(Decision{Action: 0, RequestID: "x"}, k.handlerEC, t0, time.Minute); !errors.Is(err, ErrBadAction) {
		t.Fatalf("zero action: %v", err)
	}
	if _, err := EncodeResponse(Decision{Action: ActionApprove}, k.handlerEC, t0, time.Minute); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("empty requestId: %v", err)
	}
	if _, err := EncodeResponse(Decision{Action: ActionApprove, RequestID: "x"}, nil, t0, time.Minute); !errors.Is(err, ErrKey) {
		t.Fatalf("nil key: %v", err)
	}
}

func TestRequestRoundTrip(t *testing.T) {
	k := testKeys()
	keys := []*rsa.PublicKey{&k.otherRSA.PublicKey, &k.node.PublicKey}
	reqs := []Request{testTx("t1"), &TxRequest{RequestID: "minimal"}}
	for _, typ := range ConfigChangeTypes() {
		reqs = append(reqs, testConfig("c-"+typ.String(), typ))
	}
	for _, req := range reqs {
		tok, err := EncodeRequest(req, k.node, t0)
		if err != nil {
			t.Fatalf("%s: %v", req.ID(), err)
		}
		got, err := DecodeRequest([]byte(tok), keys, req.Kind(), t0.Add(time.Minute))
		if err != nil {
			t.Fatalf("%s: %v", req.ID(), err)
		}
		if a, b := canonicalJSON(t, req), canonicalJSON(t, got); a != b {
			t.Fatalf("%s: round trip\n got %s\nwant %s", req.ID(), b, a)
		}
	}
}

// canonicalJSON encodes a request as EncodeRequest would.
func canonicalJSON(t testing.TB, r Request) string {
	t.Helper()
	var v any
	switch q := r.(type) {
	case *TxRequest:
		v = q.normalized()
	case *ConfigChangeRequest:
		v = q.normalized()
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRequestClaimsShape(t *testing.T) {
	k := testKeys()
	tok, err := EncodeRequest(testTx("t1"), k.node, t0)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var h, c map[string]any
	if err := json.Unmarshal(header, &h); err != nil || h["alg"] != "RS256" {
		t.Fatalf("header %s", header)
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"txId", "operation", "sourceType", "sourceId", "destType", "destId", "asset", "amount",
		"amountStr", "fee", "destAddressType", "destAddress", "destinations", "rawTx", "requestId", "note", "signerId", "iat", "exp"} {
		if _, ok := c[f]; !ok {
			t.Errorf("claim %s missing from %s", f, payload)
		}
	}
	if c["amount"] != 0.25 || c["iat"] != float64(t0.Unix()) || c["exp"] != float64(t0.Add(RequestTokenTTL).Unix()) {
		t.Errorf("claims %s", payload)
	}
	raw := c["rawTx"].([]any)[0].(map[string]any)
	if _, ok := raw["keyDerivationPath"]; !ok || raw["payload"] == nil {
		t.Errorf("rawTx %v", raw)
	}

	tok, err = EncodeRequest(&ConfigChangeRequest{Type: ConfigAddUser, RequestID: "c1"}, k.node, t0)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ = base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if want := `"type":"ADD_USER","extraInfo":{},"requestId":"c1","signerId":""`; !strings.Contains(string(payload), want) {
		t.Errorf("config claims %s, want %s", payload, want)
	}
}

// TestAbsentAmountsEncodeAsNull: an amount the request does not give goes
// to the handler as null, never as 0, and comes back absent.
func TestAbsentAmountsEncodeAsNull(t *testing.T) {
	k := testKeys()
	req := &TxRequest{RequestID: "t1", Asset: "ETH", Destinations: []Destination{{DestAddress: "0xabc"}}}
	tok, err := EncodeRequest(req, k.node, t0)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	var c struct {
		Amount       json.RawMessage `json:"amount"`
		Destinations []struct {
			AmountNative json.RawMessage `json:"amountNative"`
		} `json:"destinations"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if string(c.Amount) != "null" || len(c.Destinations) != 1 || string(c.Destinations[0].AmountNative) != "null" {
		t.Fatalf("absent amounts encoded as %s", payload)
	}
	got, err := DecodeRequest([]byte(tok), []*rsa.PublicKey{&k.node.PublicKey}, KindTransaction, t0)
	if err != nil {
		t.Fatal(err)
	}
	if tx := got.(*TxRequest); tx.Amount != nil || tx.Destinations[0].AmountNative != nil {
		t.Fatalf("absent amounts decoded as %v, %v", tx.Amount, tx.Destinations[0].AmountNative)
	}

	// A zero that was given stays a zero.
	req.Amount, req.Destinations[0].AmountNative = num(0), num(0)
	if tok, err = EncodeRequest(req, k.node, t0); err != nil {
		t.Fatal(err)
	}
	payload, _ = base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if !strings.Contains(string(payload), `"amount":0,`) || !strings.Contains(string(payload), `"amountNative":0,`) {
		t.Fatalf("given zeros encoded as %s", payload)
	}
}

func TestEncodeRequestErrors(t *testing.T) {
	k := testKeys()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	var nilTx *TxRequest
	tests := []struct {
		name string
		req  Request
		key  *rsa.PrivateKey
		want error
	}{
		{"nil request", nil, k.node, ErrInvalidRequest},
		{"nil pointer", nilTx, k.node, ErrInvalidRequest},
		{"empty requestId", &TxRequest{}, k.node, ErrInvalidRequest},
		{"long requestId", &TxRequest{RequestID: strings.Repeat("x", maxIDLen+1)}, k.node, ErrInvalidRequest},
		{"NaN amount", &TxRequest{RequestID: "a", Amount: num(math.NaN())}, k.node, ErrInvalidRequest},
		{"Inf destination amount", &TxRequest{RequestID: "a", Destinations: []Destination{{AmountNative: num(math.Inf(1))}}}, k.node, ErrInvalidRequest},
		{"unknown config type", &ConfigChangeRequest{RequestID: "a"}, k.node, ErrInvalidRequest},
		{"unencodable extraInfo", &ConfigChangeRequest{RequestID: "a", Type: ConfigAddUser, ExtraInfo: map[string]any{"x": math.NaN()}}, k.node, ErrInvalidRequest},
		{"nil key", testTx("a"), nil, ErrKey},
		{"1024-bit key", testTx("a"), small, ErrKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := EncodeRequest(tc.req, tc.key, t0); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	k := testKeys()
	keys := []*rsa.PublicKey{&k.node.PublicKey}
	good, err := EncodeRequest(testTx("t1"), k.node, t0)
	if err != nil {
		t.Fatal(err)
	}
	byOther, err := EncodeRequest(testTx("t1"), k.otherRSA, t0)
	if err != nil {
		t.Fatal(err)
	}
	noExp := signClaims(t, jwt.SigningMethodRS256, k.node, &txClaims{TxRequest: *testTx("t1")})
	pubPEM, _ := MarshalPublicKeyPEM(&k.node.PublicKey)
	hs := signClaims(t, jwt.SigningMethodHS256, pubPEM, &txClaims{TxRequest: *testTx("t1"),
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(t0.Add(time.Minute))}})
	tests := []struct {
		name   string
		token  string
		keys   []*rsa.PublicKey
		kind   Kind
		now    time.Time
		verify bool
		want   error
	}{
		{"good", good, keys, KindTransaction, t0, true, nil},
		{"unverified mode", byOther, nil, KindTransaction, t0, false, nil},
		{"other signer", byOther, keys, KindTransaction, t0, true, ErrBadSignature},
		{"expired", good, keys, KindTransaction, t0.Add(RequestTokenTTL + time.Minute), true, ErrExpired},
		{"expired unverified", good, nil, KindTransaction, t0.Add(RequestTokenTTL + time.Minute), false, ErrExpired},
		{"from the future", good, keys, KindTransaction, t0.Add(-time.Hour), true, ErrNotYetValid},
		{"no exp", noExp, keys, KindTransaction, t0, true, ErrMalformed},
		{"HS256 key confusion", hs, keys, KindTransaction, t0, true, ErrAlgorithm},
		{"HS256 unverified", hs, nil, KindTransaction, t0, false, ErrAlgorithm},
		{"wrong endpoint", good, keys, KindConfigChange, t0, true, ErrInvalidRequest},
		{"garbage", "hello", keys, KindTransaction, t0, true, ErrMalformed},
		{"unknown kind", good, keys, 0, t0, true, ErrInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := decodeRequest([]byte(tc.token), tc.keys, tc.kind, tc.now, tc.verify)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil && req.ID() != "t1" {
				t.Fatalf("request %+v", req)
			}
		})
	}
	if _, err := DecodeRequest([]byte(good), nil, KindTransaction, t0); !errors.Is(err, ErrKey) {
		t.Fatalf("no keys: %v", err)
	}
}
