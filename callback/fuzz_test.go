package callback

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzDecodeResponse feeds arbitrary bodies to the response decoder, with
// an RSA and an ECDSA handler key and both request kinds. Whatever the
// input, the decoder must not panic, must fail with a zero Decision and a
// sentinel error, and may succeed only with a decision that obeys the
// protocol; a decision it accepts must survive a round trip through
// EncodeResponse.
func FuzzDecodeResponse(f *testing.F) {
	k := testKeys()
	pubPEM, err := MarshalPublicKeyPEM(&k.handlerRSA.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	for _, a := range []string{"APPROVE", "REJECT", "RETRY", "IGNORE", "approve", ""} {
		f.Add([]byte(signClaims(f, jwt.SigningMethodRS256, k.handlerRSA, response(a, "req-1", "why"))))
		f.Add([]byte(signClaims(f, jwt.SigningMethodES256, k.handlerEC, response(a, "req-1", ""))))
	}
	f.Add([]byte(signClaims(f, jwt.SigningMethodRS256, k.handlerRSA, response("APPROVE", "req-2", ""))))
	f.Add([]byte(signClaims(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, response("APPROVE", "req-1", ""))))
	f.Add([]byte(signClaims(f, jwt.SigningMethodHS256, pubPEM, response("APPROVE", "req-1", ""))))
	f.Add([]byte(b64(`{"alg":"RS256"}`) + "." + b64(`{"action":"APPROVE","requestId":"req-1","exp":"soon"}`) + "."))
	bound := response("APPROVE", "req-1", "")
	bound.RequestTokenHash = RequestTokenHash(testRequestToken)
	f.Add([]byte(signClaims(f, jwt.SigningMethodES256, k.handlerEC, bound)))
	bound.RequestTokenHash = RequestTokenHash("another request token")
	f.Add([]byte(signClaims(f, jwt.SigningMethodES256, k.handlerEC, bound)))
	f.Add([]byte("not.a.jwt"))
	f.Add([]byte(""))

	signers := []crypto.Signer{k.handlerRSA, k.handlerEC}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, key := range signers {
			for _, kind := range []Kind{KindTransaction, KindConfigChange} {
				d, err := DecodeResponse(body, key.Public(), expect(kind, "req-1"), t0)
				if err != nil {
					if d != (Decision{}) {
						t.Fatalf("error %v came with decision %+v", err, d)
					}
					if !isSentinel(err) {
						t.Fatalf("error without a sentinel: %v", err)
					}
					if s := strings.TrimSpace(string(body)); len(s) > 64 && strings.Contains(err.Error(), s) {
						t.Fatalf("error quotes the whole body: %v", err)
					}
					continue
				}
				if !d.Action.AllowedFor(kind) || d.RequestID != "req-1" || d.Auto {
					t.Fatalf("accepted a decision the protocol forbids: %+v for %s", d, kind)
				}
				tok, err := EncodeResponse(d, key, t0, time.Minute)
				if err != nil {
					t.Fatalf("re-encode %+v: %v", d, err)
				}
				again, err := DecodeResponse([]byte(tok), key.Public(), expect(kind, "req-1"), t0)
				if err != nil || again != d {
					t.Fatalf("round trip: %+v, %v; want %+v", again, err, d)
				}
			}
		}
	})
}

// FuzzDecodeRequest feeds arbitrary tokens to the reference server's
// request decoder, verifying and not. A request it accepts must be valid
// and survive a round trip through EncodeRequest unchanged.
func FuzzDecodeRequest(f *testing.F) {
	k := testKeys()
	for _, req := range []Request{testTx("t1"), testConfig("c1", ConfigAddUser), &TxRequest{RequestID: "m"}} {
		tok, err := EncodeRequest(req, k.node, t0)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(tok), req.Kind() == KindConfigChange)
	}
	f.Add([]byte(b64(`{"alg":"RS256"}`)+"."+b64(`{"type":"NOPE","requestId":"x","exp":1e300}`)+".AAAA"), true)
	f.Add([]byte(b64(`{"alg":"RS256"}`)+"."+b64(`{"requestId":"x","amount":1e999,"exp":99999999999}`)+".AAAA"), false)

	keys := []*rsa.PublicKey{&k.node.PublicKey}
	f.Fuzz(func(t *testing.T, token []byte, config bool) {
		kind := KindTransaction
		if config {
			kind = KindConfigChange
		}
		for _, verify := range []bool{true, false} {
			req, err := decodeRequest(token, keys, kind, t0, verify)
			if err != nil {
				if req != nil || !isSentinel(err) {
					t.Fatalf("verify=%v: %v, %v", verify, req, err)
				}
				continue
			}
			if req.Kind() != kind || req.validate() != nil {
				t.Fatalf("accepted an invalid request %+v", req)
			}
			tok, err := EncodeRequest(req, k.node, t0)
			if err != nil {
				// Only values JSON cannot carry fail here, and the decoder
				// can only produce those from JSON it parsed: none.
				t.Fatalf("re-encode: %v", err)
			}
			again, err := DecodeRequest([]byte(tok), keys, kind, t0)
			if err != nil {
				t.Fatalf("decode re-encoded: %v", err)
			}
			if a, b := canonicalJSON(t, req), canonicalJSON(t, again); a != b {
				t.Fatalf("round trip\n got %s\nwant %s", b, a)
			}
		}
	})
}

// FuzzParsePolicy checks that any policy text either fails with
// ErrInvalidConfig or yields a policy that evaluates without panicking.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte("{}"))
	f.Add([]byte("transactions: {maxAmount: {BTC: '0.5', '*': '1'}, allowedDestinations: [a]}\nconfigChanges: {ADD_USER: ignore}\nretry: [{times: 2, noteContains: x}]"))
	f.Add([]byte("retry: [{times: 1, configType: ADD_USER}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error without ErrInvalidConfig: %v", err)
			}
			return
		}
		c, errs := p.compile()
		if len(errs) > 0 {
			t.Fatalf("parsed policy does not compile: %v", errs)
		}
		for _, req := range []Request{testTx("a"), testConfig("b", ConfigAddUser)} {
			a, reason := c.evaluate(req)
			if !a.AllowedFor(req.Kind()) || a == ActionRetry || (a == ActionReject) != (reason != "") {
				t.Fatalf("evaluate = %s %q", a, reason)
			}
			for i := range c.retry {
				c.retry[i].matches(req)
			}
		}
	})
}
