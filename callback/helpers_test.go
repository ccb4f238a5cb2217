package callback

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testKeys are made once per test binary: RSA generation is the slowest
// part of these tests.
type testKeySet struct {
	node       *rsa.PrivateKey   // the co-signer's callback key
	handlerRSA *rsa.PrivateKey   // a handler key signing RS256
	handlerEC  *ecdsa.PrivateKey // a handler key signing ES256
	otherRSA   *rsa.PrivateKey   // a stranger's RSA key
	otherEC    *ecdsa.PrivateKey // a stranger's EC key
}

var testKeys = sync.OnceValue(func() testKeySet {
	genRSA := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	genEC := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	}
	return testKeySet{node: genRSA(), handlerRSA: genRSA(), handlerEC: genEC(), otherRSA: genRSA(), otherEC: genEC()}
})

// t0 is the fake clocks' start.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func testTx(id string) *TxRequest {
	return &TxRequest{
		TxID:            "tx-" + id,
		Operation:       "TRANSFER",
		SourceType:      "VAULT",
		SourceID:        "0",
		DestType:        "ONE_TIME_ADDRESS",
		Asset:           "BTC",
		Amount:          num(0.25),
		AmountStr:       "0.25",
		Fee:             "0.0001",
		DestAddressType: "ONE_TIME",
		DestAddress:     "bc1qexampleallowedaddress0000000000000000",
		Destinations: []Destination{{
			AmountNative: num(0.25), AmountNativeStr: "0.25",
			DestAddress: "bc1qexampleallowedaddress0000000000000000", DestType: "ONE_TIME_ADDRESS",
		}},
		RawTx:     []RawTx{{KeyDerivationPath: []uint32{44, 0, 0, 0, 0}, Payload: strings.Repeat("ab", 32)}},
		RequestID: id,
		Note:      "test payment",
		SignerID:  "api-user-1",
	}
}

// num returns a pointer to f, for the optional amounts of the payload.
func num(f float64) *float64 { return &f }

func testConfig(id string, t ConfigChangeType) *ConfigChangeRequest {
	return &ConfigChangeRequest{
		Type:      t,
		ExtraInfo: map[string]any{"name": "example", "count": 2.0},
		RequestID: id,
		SignerID:  "api-user-1",
	}
}

// signClaims signs arbitrary claims with any method and key, for forging
// responses in tests.
func signClaims(t testing.TB, m jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// response builds response claims valid at t0.
func response(action, requestID, reason string) *responseClaims {
	return &responseClaims{
		Action: action, RequestID: requestID, RejectionReason: reason,
		RegisteredClaims: jwt.RegisteredClaims{
			IssuedAt:  jwt.NewNumericDate(t0),
			ExpiresAt: jwt.NewNumericDate(t0.Add(time.Minute)),
		},
	}
}

// testRequestToken stands for the request token a response answers, in
// tests that decode responses directly.
const testRequestToken = "header.claims.signature"

// expect returns what a node with the default settings expects of an
// answer to request id of kind k sent as testRequestToken.
func expect(k Kind, id string) Expected {
	return Expected{Kind: k, RequestID: id, RequestToken: testRequestToken, MaxAge: DefaultConfig().MaxAnswerAge}
}

func mustEncodeResponse(t testing.TB, d Decision, key crypto.Signer, now time.Time) string {
	t.Helper()
	s, err := EncodeResponse(d, key, now, time.Minute)
	if err != nil {
		t.Fatalf("EncodeResponse: %v", err)
	}
	return s
}

// testLogger sends logs to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// isSentinel reports whether err wraps one of the package's sentinels.
func isSentinel(err error) bool {
	for _, s := range []error{
		ErrInvalidConfig, ErrInvalidRequest, ErrKey, ErrMalformed, ErrAlgorithm, ErrBadSignature,
		ErrExpired, ErrNotYetValid, ErrStaleResponse, ErrRequestIDMismatch, ErrUnboundResponse, ErrBadAction, ErrTimeout, ErrUnreachable,
		ErrHTTPStatus, ErrResponseTooLarge, ErrRetryRequested, ErrBudgetExhausted,
	} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
