package callback

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
)

func newTestServer(t *testing.T, fc *clock.Fake, key crypto.Signer, edit func(*ServerConfig)) *Server {
	t.Helper()
	p, err := LoadPolicy("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultServerConfig()
	cfg.Policy = p
	cfg.Key = key
	cfg.CosignerKeys = []*rsa.PublicKey{&testKeys().node.PublicKey}
	cfg.Clock = fc
	cfg.Logger = testLogger(t)
	if edit != nil {
		edit(&cfg)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEndToEnd runs the Client against the reference Server over loopback
// HTTP, with both kinds of handler key.
func TestEndToEnd(t *testing.T) {
	const okBTC = "bc1qexampleallowedaddress0000000000000000"
	k := testKeys()
	txWith := func(id, asset, amount, dest, note string) *TxRequest {
		r := testTx(id)
		r.Asset, r.AmountStr, r.DestAddress, r.Note = asset, amount, dest, note
		r.Destinations = nil
		return r
	}
	type tcase struct {
		name    string
		req     Request
		retries int // RETRY answers before the final one
		want    Action
		reason  string
	}
	tests := []tcase{
		{"transaction within policy", txWith("t1", "BTC", "0.25", okBTC, ""), 0, ActionApprove, ""},
		{"transaction over the limit", txWith("t2", "BTC", "0.75", okBTC, ""), 0, ActionReject, "exceeds the maximum"},
		{"destination not allowed", txWith("t3", "BTC", "0.1", "bc1qelsewhere", ""), 0, ActionReject, "not on the allowlist"},
		{"note asks for one retry", txWith("t4", "BTC", "0.1", okBTC, "please-retry"), 1, ActionApprove, ""},
		{"amount asks for two retries", txWith("t5", "BTC", "0.0042", okBTC, ""), 2, ActionApprove, ""},
		{"retry then reject", txWith("t6", "BTC", "9", okBTC, "please-retry"), 1, ActionReject, "exceeds"},
	}
	configWant := map[ConfigChangeType]Action{
		ConfigAddUser: ActionReject, ConfigChangeQuorumThreshold: ActionIgnore,
	}
	for _, typ := range ConfigChangeTypes() {
		want, ok := configWant[typ]
		if !ok {
			want = ActionApprove
		}
		retries := 0
		if typ == ConfigEnableOneTimeAddress {
			retries = 1
		}
		tests = append(tests, tcase{"config change " + typ.String(), testConfig("c-"+typ.String(), typ), retries, want, ""})
	}

	for _, key := range []crypto.Signer{k.handlerRSA, k.handlerEC} {
		t.Run(fmt.Sprintf("%T", key), func(t *testing.T) {
			fc := clock.NewFake(t0)
			srv := httptest.NewServer(newTestServer(t, fc, key, nil))
			defer srv.Close()
			// The reference server binds its answers to the request token,
			// so a node may require that.
			c := newTestClient(t, srv.URL, fc, func(cfg *Config) {
				cfg.HandlerKey = key.Public()
				cfg.RequireRequestTokenHash = true
			})
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					for i := range tc.retries {
						d, err := c.Ask(context.Background(), tc.req)
						if err != nil || d.Action != ActionRetry {
							t.Fatalf("attempt %d: %+v, %v; want RETRY", i+1, d, err)
						}
					}
					d, err := c.Ask(context.Background(), tc.req)
					if err != nil {
						t.Fatal(err)
					}
					if d.Action != tc.want || !strings.Contains(d.RejectionReason, tc.reason) {
						t.Fatalf("decision %+v, want %s %q", d, tc.want, tc.reason)
					}
					if (d.Action == ActionReject) != (d.RejectionReason != "") {
						t.Fatalf("decision %+v: a REJECT needs a reason, other actions have none", d)
					}
				})
			}

			// A node the handler does not know is refused, and never approved.
			stranger := newTestClient(t, srv.URL, fc, func(cfg *Config) {
				cfg.HandlerKey = key.Public()
				cfg.SigningKey = k.otherRSA
			})
			d, err := stranger.Ask(context.Background(), txWith("t9", "BTC", "0.1", okBTC, ""))
			if !errors.Is(err, ErrHTTPStatus) || !strings.Contains(err.Error(), "401") || d.Approved() {
				t.Fatalf("unknown signer: %+v, %v", d, err)
			}
		})
	}
}

func TestServerConcurrentRetries(t *testing.T) {
	fc := clock.NewFake(t0)
	srv := httptest.NewServer(newTestServer(t, fc, testKeys().handlerEC, nil))
	defer srv.Close()
	c := newTestClient(t, srv.URL, fc, func(cfg *Config) { cfg.HandlerKey = testKeys().handlerEC.Public() })
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := testTx(fmt.Sprintf("conc-%d", i))
			req.Note = "please-retry"
			for j, want := range []Action{ActionRetry, ActionApprove} {
				d, err := c.Ask(context.Background(), req)
				if err != nil || d.Action != want {
					errs <- fmt.Errorf("%s ask %d: %+v, %v", req.RequestID, j+1, d, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestServerHTTP(t *testing.T) {
	k := testKeys()
	fc := clock.NewFake(t0)
	s := newTestServer(t, fc, k.handlerRSA, nil)
	good, err := EncodeRequest(testTx("h1"), k.node, t0)
	if err != nil {
		t.Fatal(err)
	}
	byStranger, err := EncodeRequest(testTx("h1"), k.otherRSA, t0)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := EncodeRequest(testTx("h1"), k.node, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		want   int
	}{
		{"approved", http.MethodPost, TxPath, good, http.StatusOK},
		{"wrong method", http.MethodGet, TxPath, "", http.StatusMethodNotAllowed},
		{"unknown path", http.MethodPost, "/v1/tx_sign_request", good, http.StatusNotFound},
		{"too large", http.MethodPost, TxPath, strings.Repeat("a", 1<<20+1), http.StatusRequestEntityTooLarge},
		{"garbage", http.MethodPost, TxPath, "hello", http.StatusBadRequest},
		{"tx token at the config endpoint", http.MethodPost, ConfigChangePath, good, http.StatusBadRequest},
		{"unknown signer", http.MethodPost, TxPath, byStranger, http.StatusUnauthorized},
		{"expired request", http.MethodPost, TxPath, stale, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if len(tc.body) > 40 && strings.Contains(w.Body.String(), tc.body) {
				t.Fatal("response echoes the request token")
			}
			if w.Code != http.StatusOK {
				return
			}
			want := Expected{Kind: KindTransaction, RequestID: "h1", RequestToken: tc.body, RequireTokenHash: true, MaxAge: time.Minute}
			d, err := DecodeResponse(w.Body.Bytes(), &k.handlerRSA.PublicKey, want, t0)
			if err != nil || !d.Approved() || d.RequestTokenHash != RequestTokenHash(tc.body) {
				t.Fatalf("response %+v, %v; want an APPROVE bound to the request token", d, err)
			}
		})
	}
}

func TestServerInsecureSkipVerify(t *testing.T) {
	k := testKeys()
	fc := clock.NewFake(t0)
	s := newTestServer(t, fc, k.handlerEC, func(cfg *ServerConfig) {
		cfg.CosignerKeys = nil
		cfg.InsecureSkipRequestVerify = true
	})
	tok, err := EncodeRequest(testTx("i1"), k.otherRSA, t0)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, TxPath, strings.NewReader(tok)))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	want := Expected{Kind: KindTransaction, RequestID: "i1", RequestToken: tok, RequireTokenHash: true, MaxAge: time.Minute}
	if d, err := DecodeResponse(w.Body.Bytes(), k.handlerEC.Public(), want, t0); err != nil || !d.Approved() {
		t.Fatalf("response %+v, %v", d, err)
	}
}

func TestServerConfigValidate(t *testing.T) {
	k := testKeys()
	p, err := ParsePolicy([]byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	valid := DefaultServerConfig()
	valid.Policy = p
	valid.Key = k.handlerEC
	valid.CosignerKeys = []*rsa.PublicKey{&k.node.PublicKey}
	tests := []struct {
		name string
		edit func(*ServerConfig)
		want []string
	}{
		{"valid", func(*ServerConfig) {}, nil},
		{"insecure without keys", func(c *ServerConfig) { c.CosignerKeys, c.InsecureSkipRequestVerify = nil, true }, nil},
		{"no keys", func(c *ServerConfig) { c.CosignerKeys = nil }, []string{"no co-signer keys"}},
		{"nil co-signer key", func(c *ServerConfig) { c.CosignerKeys = []*rsa.PublicKey{nil} }, []string{"co-signer key 0"}},
		{"bad policy", func(c *ServerConfig) { c.Policy = &Policy{Retry: []RetryRule{{}}} }, []string{"retry[0]"}},
		{"everything wrong", func(c *ServerConfig) {
			*c = ServerConfig{}
		}, []string{"no policy", "signing key is required", "no co-signer keys", "response TTL", "max request bytes", "clock", "logger"}},
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
			if _, err := NewServer(cfg); err == nil {
				t.Fatal("NewServer accepted an invalid config")
			}
		})
	}
}

// replayer forwards the first request to the reference server and records
// its answer, then plays that answer back to every later request: an
// old APPROVE for the same requestId, as an attacker between the node and
// the handler could, or a handler's cache after a failover.
type replayer struct {
	next     http.Handler
	mu       sync.Mutex
	recorded []byte
}

func (p *replayer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.recorded != nil {
		_, _ = w.Write(p.recorded)
		return
	}
	rec := httptest.NewRecorder()
	p.next.ServeHTTP(rec, r)
	p.recorded = rec.Body.Bytes()
	_, _ = w.Write(p.recorded)
}

// TestReplayedAnswerRefused: an APPROVE the reference server gave to one
// request token is refused for another token of the same request, asked
// again later (a failover), both when the node requires binding and when
// it does not, because a requestTokenHash present must always match.
func TestReplayedAnswerRefused(t *testing.T) {
	for _, require := range []bool{true, false} {
		t.Run(fmt.Sprintf("required=%v", require), func(t *testing.T) {
			k := testKeys()
			fc := clock.NewFake(t0)
			srv := httptest.NewServer(&replayer{next: newTestServer(t, fc, k.handlerEC, nil)})
			defer srv.Close()
			c := newTestClient(t, srv.URL, fc, func(cfg *Config) {
				cfg.HandlerKey = k.handlerEC.Public()
				cfg.RequireRequestTokenHash = require
			})
			req := testTx("replayed")
			if d, err := c.Ask(context.Background(), req); err != nil || !d.Approved() || d.RequestTokenHash == "" {
				t.Fatalf("first ask: %+v, %v; want a bound APPROVE", d, err)
			}
			fc.Advance(10 * time.Second) // a new request token, within the answer's exp and age
			d, err := c.Ask(context.Background(), req)
			if !errors.Is(err, ErrUnboundResponse) || Retryable(err) || d.Approved() {
				t.Fatalf("replayed answer: %+v, %v; want ErrUnboundResponse", d, err)
			}
		})
	}
}
