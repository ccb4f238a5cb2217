package callback

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/coterie-mpc/coterie/clock"
)

// step is one scripted answer of a fake handler. req has been decoded and
// verified with the node's key.
type step func(t *testing.T, fc *clock.Fake, w http.ResponseWriter, r *http.Request, req Request)

func answer(action, reason string) step {
	return func(t *testing.T, fc *clock.Fake, w http.ResponseWriter, _ *http.Request, req Request) {
		a, err := ParseAction(action)
		if err != nil {
			t.Error(err)
		}
		_, _ = w.Write([]byte(mustEncodeResponse(t, Decision{Action: a, RequestID: req.ID(), RejectionReason: reason}, testKeys().handlerRSA, fc.Now())))
	}
}

// forged answers claims signed with any method and key.
func forged(m jwt.SigningMethod, key func() any, edit func(c *responseClaims)) step {
	return func(t *testing.T, fc *clock.Fake, w http.ResponseWriter, _ *http.Request, req Request) {
		c := response("APPROVE", req.ID(), "")
		c.IssuedAt = jwt.NewNumericDate(fc.Now())
		c.ExpiresAt = jwt.NewNumericDate(fc.Now().Add(time.Minute))
		if edit != nil {
			edit(c)
		}
		_, _ = w.Write([]byte(signClaims(t, m, key(), c)))
	}
}

// bound answers APPROVE with the requestTokenHash of token, or of the
// request token received when token is "".
func bound(token string) step {
	return func(t *testing.T, fc *clock.Fake, w http.ResponseWriter, r *http.Request, req Request) {
		if token == "" {
			token = r.Header.Get(requestTokenHeader)
		}
		d := Decision{Action: ActionApprove, RequestID: req.ID(), RequestTokenHash: RequestTokenHash(token)}
		_, _ = w.Write([]byte(mustEncodeResponse(t, d, testKeys().handlerRSA, fc.Now())))
	}
}

func status(code int) step {
	return func(_ *testing.T, _ *clock.Fake, w http.ResponseWriter, r *http.Request, _ Request) {
		if code/100 == 3 {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", code)
			return
		}
		http.Error(w, "handler trouble", code)
	}
}

func rawBody(body string) step {
	return func(_ *testing.T, _ *clock.Fake, w http.ResponseWriter, _ *http.Request, _ Request) {
		_, _ = w.Write([]byte(body))
	}
}

// hang makes the client's attempt time out: the client armed its timer
// before sending, so advancing the fake clock by the timeout here fires
// it. The handler then waits for the client to go away.
func hang(t *testing.T, fc *clock.Fake, _ http.ResponseWriter, r *http.Request, _ Request) {
	fc.Advance(30 * time.Second)
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
		t.Error("client did not abandon the hung request")
	}
}

// requestTokenHeader carries the request token to a step, inside the
// test's scriptServer only.
const requestTokenHeader = "X-Test-Request-Token"

// scriptServer serves steps in order, the last one repeating, and counts
// hits.
type scriptServer struct {
	t     *testing.T
	fc    *clock.Fake
	steps []step
	mu    sync.Mutex
	hits  int
}

func (s *scriptServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.t.Errorf("read request: %v", err)
	}
	kind := KindTransaction
	if r.URL.Path == ConfigChangePath {
		kind = KindConfigChange
	} else if r.URL.Path != TxPath {
		s.t.Errorf("request to %s", r.URL.Path)
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "text/plain" {
		s.t.Errorf("request %s with content type %q", r.Method, r.Header.Get("Content-Type"))
	}
	req, err := DecodeRequest(body, []*rsa.PublicKey{&testKeys().node.PublicKey}, kind, s.fc.Now())
	if err != nil {
		s.t.Errorf("client sent a bad request token: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// Steps that need the raw token find it here.
	r.Header.Set(requestTokenHeader, string(body))
	s.mu.Lock()
	i := min(s.hits, len(s.steps)-1)
	s.hits++
	s.mu.Unlock()
	s.steps[i](s.t, s.fc, w, r, req)
}

func (s *scriptServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

func newTestClient(t *testing.T, url string, fc *clock.Fake, edit func(*Config)) *Client {
	t.Helper()
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.HandlerKey = &testKeys().handlerRSA.PublicKey
	cfg.SigningKey = testKeys().node
	cfg.Clock = fc
	cfg.Logger = testLogger(t)
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestAsk(t *testing.T) {
	k := testKeys()
	rsaKey := func() any { return k.handlerRSA }
	pubPEM, err := MarshalPublicKeyPEM(&k.handlerRSA.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		step    step
		edit    func(*Config)
		req     Request
		want    Action
		reason  string
		wantErr error
		// status is the *StatusError's code, for an HTTP status.
		status int
		// retryable is what Retryable must say of wantErr.
		retryable bool
	}{
		{name: "APPROVE", step: answer("APPROVE", ""), want: ActionApprove},
		{name: "REJECT with its reason", step: answer("REJECT", "too much"), want: ActionReject, reason: "too much"},
		{name: "RETRY with a reason", step: answer("RETRY", "busy"), want: ActionRetry, reason: "busy"},
		{name: "RETRY without a reason", step: answer("RETRY", ""), want: ActionRetry},
		{name: "IGNORE for a config change", step: answer("IGNORE", ""), req: testConfig("c1", ConfigAddUser), want: ActionIgnore},
		{name: "HTTP error", step: status(503), wantErr: ErrHTTPStatus, status: 503, retryable: true},
		{name: "redirect not followed", step: status(302), wantErr: ErrHTTPStatus, status: 302, retryable: true},
		{name: "timeout", step: hang, wantErr: ErrTimeout, retryable: true},
		{name: "oversized body", step: rawBody(strings.Repeat("x", MaxResponseBytes+10)), wantErr: ErrResponseTooLarge, retryable: true},
		{name: "bad signature", step: forged(jwt.SigningMethodRS256, func() any { return k.otherRSA }, nil), wantErr: ErrBadSignature},
		{name: "wrong requestId", step: forged(jwt.SigningMethodRS256, rsaKey, func(c *responseClaims) { c.RequestID = "someone-else" }),
			wantErr: ErrRequestIDMismatch},
		{name: "alg none", step: forged(jwt.SigningMethodNone, func() any { return jwt.UnsafeAllowNoneSignatureType }, nil), wantErr: ErrAlgorithm},
		{name: "HS256 with the public key", step: forged(jwt.SigningMethodHS256, func() any { return pubPEM }, nil), wantErr: ErrAlgorithm},
		{name: "expired response", step: forged(jwt.SigningMethodRS256, rsaKey, func(c *responseClaims) {
			c.IssuedAt = jwt.NewNumericDate(c.IssuedAt.Add(-time.Hour))
			c.ExpiresAt = jwt.NewNumericDate(c.ExpiresAt.Add(-time.Hour))
		}), wantErr: ErrExpired},
		{name: "IGNORE for a transaction", step: answer("IGNORE", ""), wantErr: ErrBadAction},
		{name: "no iat refused by default", step: forged(jwt.SigningMethodRS256, rsaKey, func(c *responseClaims) { c.IssuedAt, c.ExpiresAt = nil, nil }),
			wantErr: ErrStaleResponse},
		{name: "no iat accepted with the opt-out", step: forged(jwt.SigningMethodRS256, rsaKey, func(c *responseClaims) { c.IssuedAt, c.ExpiresAt = nil, nil }),
			edit: func(c *Config) { c.AllowAnswersWithoutIAT = true }, want: ActionApprove},
		{name: "old iat refused", step: forged(jwt.SigningMethodRS256, rsaKey, func(c *responseClaims) {
			c.IssuedAt, c.ExpiresAt = jwt.NewNumericDate(c.IssuedAt.Add(-10*time.Minute)), nil
		}), wantErr: ErrStaleResponse},
		{name: "old iat refused with the opt-out too", step: forged(jwt.SigningMethodRS256, rsaKey, func(c *responseClaims) {
			c.IssuedAt, c.ExpiresAt = jwt.NewNumericDate(c.IssuedAt.Add(-10*time.Minute)), nil
		}), edit: func(c *Config) { c.AllowAnswersWithoutIAT = true }, wantErr: ErrStaleResponse},
		{name: "iat within a longer max answer age", step: forged(jwt.SigningMethodRS256, rsaKey, func(c *responseClaims) {
			c.IssuedAt, c.ExpiresAt = jwt.NewNumericDate(c.IssuedAt.Add(-10*time.Minute)), nil
		}), edit: func(c *Config) { c.MaxAnswerAge = 15 * time.Minute }, want: ActionApprove},
		{name: "v2 answer without requestTokenHash accepted by default", step: answer("APPROVE", ""), want: ActionApprove},
		{name: "v2 answer without requestTokenHash refused when required", step: answer("APPROVE", ""),
			edit: func(c *Config) { c.RequireRequestTokenHash = true }, wantErr: ErrUnboundResponse},
		{name: "requestTokenHash of this request accepted when required", step: bound(""),
			edit: func(c *Config) { c.RequireRequestTokenHash = true }, want: ActionApprove},
		{name: "requestTokenHash of another request refused", step: bound("another request token"), wantErr: ErrUnboundResponse},
		{name: "garbage", step: rawBody("<html>ok</html>"), wantErr: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := clock.NewFake(t0)
			script := &scriptServer{t: t, fc: fc, steps: []step{tc.step}}
			srv := httptest.NewServer(script)
			defer srv.Close()
			c := newTestClient(t, srv.URL, fc, tc.edit)
			req := tc.req
			if req == nil {
				req = testTx("r1")
			}
			d, err := c.Ask(context.Background(), req)
			if hits := script.count(); hits != 1 {
				t.Errorf("handler hit %d times, want 1: Ask makes one attempt", hits)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || Retryable(err) != tc.retryable {
					t.Fatalf("err = %v (retryable %v), want %v (retryable %v)", err, Retryable(err), tc.wantErr, tc.retryable)
				}
				if d != (Decision{}) {
					t.Errorf("failure came with decision %+v", d)
				}
				var se *StatusError
				if got := errors.As(err, &se); got != (tc.status != 0) || got && (se.Code != tc.status || se.Redirect() != (tc.status/100 == 3)) {
					t.Errorf("err %v: StatusError %+v, want status %d", err, se, tc.status)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if d.Action != tc.want || d.RejectionReason != tc.reason || d.RequestID != req.ID() || d.Auto {
				t.Fatalf("decision %+v, want %s %q", d, tc.want, tc.reason)
			}
		})
	}
}

func TestAskIsOneAttempt(t *testing.T) {
	fc := clock.NewFake(t0)
	script := &scriptServer{t: t, fc: fc, steps: []step{answer("RETRY", "later"), status(500)}}
	srv := httptest.NewServer(script)
	defer srv.Close()
	c := newTestClient(t, srv.URL+"/", fc, nil)
	d, err := c.Ask(context.Background(), testTx("r1"))
	if err != nil || d.Action != ActionRetry || d.RejectionReason != "later" || d.Approved() {
		t.Fatalf("Ask = %+v, %v", d, err)
	}
	_, err = c.Ask(context.Background(), testTx("r1"))
	if !errors.Is(err, ErrHTTPStatus) || !Retryable(err) || !strings.Contains(err.Error(), "500") {
		t.Fatalf("Ask = %v, want a retryable ErrHTTPStatus", err)
	}
	if script.count() != 2 || fc.Pending() != 0 {
		t.Fatalf("hits %d, pending timers %d", script.count(), fc.Pending())
	}
	if _, err := c.Ask(context.Background(), &TxRequest{}); !errors.Is(err, ErrInvalidRequest) || Retryable(err) {
		t.Fatalf("invalid request: %v", err)
	}
	if _, err := c.Ask(context.Background(), nil); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("nil request: %v", err)
	}
}

func TestAskTimeout(t *testing.T) {
	fc := clock.NewFake(t0)
	srv := httptest.NewServer(&scriptServer{t: t, fc: fc, steps: []step{hang}})
	defer srv.Close()
	c := newTestClient(t, srv.URL, fc, nil)
	d, err := c.Ask(context.Background(), testTx("r1"))
	if !errors.Is(err, ErrTimeout) || !Retryable(err) || d != (Decision{}) {
		t.Fatalf("Ask = %+v, %v; want ErrTimeout", d, err)
	}
	if got := fc.Now().Sub(t0); got != 30*time.Second {
		t.Fatalf("timed out after %s of fake time, want the 30 s default", got)
	}
}

func TestAskCallerContext(t *testing.T) {
	fc := clock.NewFake(t0)
	srv := httptest.NewServer(&scriptServer{t: t, fc: fc, steps: []step{answer("APPROVE", "")}})
	defer srv.Close()
	c := newTestClient(t, srv.URL, fc, nil)

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if d, err := c.Ask(canceled, testTx("r1")); !errors.Is(err, context.Canceled) || Retryable(err) || d.Approved() {
		t.Fatalf("canceled: %+v, %v", d, err)
	}
	past, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	if d, err := c.Ask(past, testTx("r1")); !errors.Is(err, ErrTimeout) || d.Approved() {
		t.Fatalf("deadline passed: %+v, %v", d, err)
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	fc := clock.NewFake(t0)
	c := newTestClient(t, url, fc, nil)
	d, err := c.Ask(context.Background(), testTx("r1"))
	if !errors.Is(err, ErrUnreachable) || !Retryable(err) || d.Approved() {
		t.Fatalf("Ask = %+v, %v", d, err)
	}
	if strings.Contains(err.Error(), "eyJ") {
		t.Fatalf("error carries a token: %v", err)
	}
}

func TestAutoApprove(t *testing.T) {
	c, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !c.AutoApprove() {
		t.Fatal("no URL should auto-approve")
	}
	for _, req := range []Request{testTx("a"), testConfig("b", ConfigAddUser)} {
		d, err := c.Ask(context.Background(), req)
		if err != nil || !d.Approved() || !d.Auto || d.RequestID != req.ID() {
			t.Fatalf("Ask = %+v, %v", d, err)
		}
		if !strings.Contains(d.String(), "no callback handler configured") {
			t.Fatalf("String() = %q", d.String())
		}
	}
	if _, err := c.Ask(context.Background(), &TxRequest{}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("auto-approve of an invalid request: %v", err)
	}
}

func TestHTTPS(t *testing.T) {
	fc := clock.NewFake(t0)
	srv := httptest.NewTLSServer(&scriptServer{t: t, fc: fc, steps: []step{answer("APPROVE", "")}})
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c := newTestClient(t, srv.URL, fc, func(cfg *Config) { cfg.RootCAs = pool })
	if d, err := c.Ask(context.Background(), testTx("r1")); err != nil || !d.Approved() {
		t.Fatalf("with the CA: %+v, %v", d, err)
	}
	untrusting := newTestClient(t, srv.URL, fc, nil)
	if d, err := untrusting.Ask(context.Background(), testTx("r1")); !errors.Is(err, ErrUnreachable) || d.Approved() {
		t.Fatalf("without the CA: %+v, %v", d, err)
	}
}

func TestConfigValidate(t *testing.T) {
	k := testKeys()
	valid := DefaultConfig()
	valid.URL = "https://handler.example.com/cb"
	valid.HandlerKey = &k.handlerEC.PublicKey
	valid.SigningKey = k.node
	tests := []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"valid https", func(*Config) {}, nil},
		{"http loopback v4", func(c *Config) { c.URL = "http://127.0.0.1:8080" }, nil},
		{"http loopback v6", func(c *Config) { c.URL = "http://[::1]:8080/" }, nil},
		{"http localhost", func(c *Config) { c.URL = "http://localhost:8080" }, nil},
		{"auto approve ignores keys", func(c *Config) { c.URL, c.HandlerKey, c.SigningKey = "", nil, nil }, nil},
		{"http remote", func(c *Config) { c.URL = "http://handler.example.com" }, []string{"not loopback"}},
		{"ftp", func(c *Config) { c.URL = "ftp://127.0.0.1" }, []string{"scheme"}},
		{"user info", func(c *Config) { c.URL = "https://u:p@handler.example.com" }, []string{"user info"}},
		{"query", func(c *Config) { c.URL = "https://handler.example.com/?a=b" }, []string{"query"}},
		{"no host", func(c *Config) { c.URL = "https:///path" }, []string{"no host"}},
		{"unparsable", func(c *Config) { c.URL = "https://a b\x7f" }, []string{"does not parse"}},
		{"missing keys", func(c *Config) { c.HandlerKey, c.SigningKey = nil, nil }, []string{"handler public key is required", "signing key is required"}},
		{"wrong key type", func(c *Config) { c.HandlerKey = "pem text" }, []string{"handler public key"}},
		{"everything wrong", func(c *Config) {
			c.URL, c.Timeout, c.Retry, c.Clock, c.Logger = "http://example.com", 0, Backoff{}, nil, nil
		}, []string{"not loopback", "timeout", "max attempts", "clock", "logger"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.edit(&cfg)
			err := cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := New(cfg); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New accepted an invalid config: %v", err)
			}
		})
	}
}
