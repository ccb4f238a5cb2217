package console

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
)

const testToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// testState is what the test console answers: it names a request, so a
// leak of data shows.
func testState() State {
	return State{NodeID: "n1", Time: t0, Health: Health{Status: "serving"},
		InFlight: InFlight{Total: 1, Requests: []Request{{ID: "req-secretless-1", User: "ws/u1", Owner: "n1", Stage: "callback"}}}}
}

// testConsole serves a console on a fake clock.
func testConsole(t *testing.T, edit func(*Config)) (*httptest.Server, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0)
	cfg := DefaultConfig()
	cfg.NodeID, cfg.Token, cfg.State, cfg.Clock = "n1", testToken, testState, clk
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, clk
}

// client returns an HTTP client with a cookie jar that does not follow
// redirects.
func client(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type answer struct {
	code int
	body string
	resp *http.Response
}

func do(t *testing.T, c *http.Client, method, u string, form url.Values, header map[string]string) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp}
}

// login posts the token to the login form.
func login(t *testing.T, c *http.Client, base, token string) answer {
	return do(t, c, http.MethodPost, base+PathLogin, url.Values{"token": {token}}, nil)
}

// TestNoDataWithoutAuth asks for the page and the state without a
// session or with a wrong one: the page is the login form, the state a
// 401, and neither holds the state's data.
func TestNoDataWithoutAuth(t *testing.T) {
	srv, _ := testConsole(t, nil)
	c := client(t)
	tests := []struct {
		name   string
		path   string
		header map[string]string
		code   int
		want   string
	}{
		{"page without a session", PathPage, nil, http.StatusOK, `action="/login"`},
		{"page with a forged cookie", PathPage, map[string]string{"Cookie": CookieName + "=" + testToken}, http.StatusOK, `action="/login"`},
		{"page with the bearer token", PathPage, map[string]string{"Authorization": "Bearer " + testToken}, http.StatusOK, `action="/login"`},
		{"state without anything", PathState, nil, http.StatusUnauthorized, `"unauthorized"`},
		{"state with a forged cookie", PathState, map[string]string{"Cookie": CookieName + "=x"}, http.StatusUnauthorized, `"unauthorized"`},
		{"state with the token as cookie", PathState, map[string]string{"Cookie": CookieName + "=" + testToken}, http.StatusUnauthorized, `"unauthorized"`},
		{"state with a wrong bearer", PathState, map[string]string{"Authorization": "Bearer " + strings.Repeat("f", 64)}, http.StatusUnauthorized, `"unauthorized"`},
		{"state with a basic header", PathState, map[string]string{"Authorization": "Basic " + testToken}, http.StatusUnauthorized, `"unauthorized"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, c, http.MethodGet, srv.URL+tt.path, nil, tt.header)
			if a.code != tt.code || !strings.Contains(a.body, tt.want) {
				t.Fatalf("%d %s, want %d with %s", a.code, a.body, tt.code, tt.want)
			}
			if strings.Contains(a.body, "req-secretless-1") || strings.Contains(a.body, "csrf") {
				t.Fatalf("data without auth: %s", a.body)
			}
			if a.resp.Header.Get("Cache-Control") != "no-store" || !strings.Contains(a.resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
				t.Fatalf("headers %v", a.resp.Header)
			}
		})
	}
	// The bearer token answers the state, for scripts.
	if a := do(t, c, http.MethodGet, srv.URL+PathState, nil, map[string]string{"Authorization": "Bearer " + testToken}); a.code != http.StatusOK ||
		!strings.Contains(a.body, "req-secretless-1") {
		t.Fatalf("state with the bearer token: %d %s", a.code, a.body)
	}
}

// TestLoginSessionLogout logs in through the form, reads the page and
// the state with the cookie alone, refuses a logout without the CSRF
// token or from another site, and logs out.
func TestLoginSessionLogout(t *testing.T) {
	srv, clk := testConsole(t, nil)
	c := client(t)
	a := login(t, c, srv.URL, "  "+testToken+"\n")
	if a.code != http.StatusSeeOther || a.resp.Header.Get("Location") != PathPage {
		t.Fatalf("login: %d %v", a.code, a.resp.Header)
	}
	cookies := a.resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v", cookies)
	}
	ck := cookies[0]
	if ck.Name != CookieName || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure || ck.MaxAge != 12*3600 ||
		strings.Contains(ck.Value, testToken) || len(ck.Value) < 40 {
		t.Fatalf("cookie %+v", ck)
	}
	page := do(t, c, http.MethodGet, srv.URL+PathPage, nil, nil)
	if page.code != http.StatusOK || !strings.Contains(page.body, `src="/console/console.js"`) || strings.Contains(page.body, `action="/login"`) {
		t.Fatalf("page: %d %s", page.code, page.body)
	}
	csrf := between(page.body, `name="csrf" value="`, `"`)
	if len(csrf) < 40 || strings.Contains(csrf, ck.Value) {
		t.Fatalf("csrf %q", csrf)
	}
	st := do(t, c, http.MethodGet, srv.URL+PathState, nil, nil)
	var got State
	if st.code != http.StatusOK || json.Unmarshal([]byte(st.body), &got) != nil || got.InFlight.Requests[0].ID != "req-secretless-1" {
		t.Fatalf("state: %d %s", st.code, st.body)
	}
	for _, f := range []string{"console.js", "console.css"} {
		if a := do(t, c, http.MethodGet, srv.URL+PathAssets+f, nil, nil); a.code != http.StatusOK || len(a.body) < 500 {
			t.Fatalf("%s: %d", f, a.code)
		}
	}

	if a := do(t, c, http.MethodPost, srv.URL+PathLogout, url.Values{}, nil); a.code != http.StatusForbidden {
		t.Fatalf("logout without the CSRF token: %d", a.code)
	}
	if a := do(t, c, http.MethodPost, srv.URL+PathLogout, url.Values{"csrf": {csrf + "x"}}, nil); a.code != http.StatusForbidden {
		t.Fatalf("logout with a wrong CSRF token: %d", a.code)
	}
	if a := do(t, c, http.MethodPost, srv.URL+PathLogout, url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}); a.code != http.StatusForbidden {
		t.Fatalf("logout from another site: %d", a.code)
	}
	if a := do(t, c, http.MethodPost, srv.URL+PathLogin, url.Values{"token": {testToken}}, map[string]string{"Origin": "https://evil.example"}); a.code != http.StatusForbidden {
		t.Fatalf("login from another origin: %d", a.code)
	}
	if a := do(t, c, http.MethodGet, srv.URL+PathState, nil, nil); a.code != http.StatusOK {
		t.Fatalf("the refused logouts ended the session: %d", a.code)
	}
	if a := do(t, c, http.MethodPost, srv.URL+PathLogout, url.Values{"csrf": {csrf}}, nil); a.code != http.StatusSeeOther {
		t.Fatalf("logout: %d %s", a.code, a.body)
	}
	// The server forgot the session: the old cookie opens nothing.
	old := client(t)
	u, _ := url.Parse(srv.URL)
	old.Jar.SetCookies(u, []*http.Cookie{{Name: CookieName, Value: ck.Value}})
	if a := do(t, old, http.MethodGet, srv.URL+PathState, nil, nil); a.code != http.StatusUnauthorized {
		t.Fatalf("state after logout: %d", a.code)
	}

	// A session ends at its expiry.
	login(t, c, srv.URL, testToken)
	if a := do(t, c, http.MethodGet, srv.URL+PathState, nil, nil); a.code != http.StatusOK {
		t.Fatalf("state after a new login: %d", a.code)
	}
	clk.Advance(DefaultConfig().SessionTTL)
	if a := do(t, c, http.MethodGet, srv.URL+PathState, nil, nil); a.code != http.StatusUnauthorized {
		t.Fatalf("state after expiry: %d", a.code)
	}
}

func between(s, from, to string) string {
	_, after, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, to)
	return v
}

// TestSecureCookie: over TLS the cookie is Secure.
func TestSecureCookie(t *testing.T) {
	srv, _ := testConsole(t, func(c *Config) { c.Secure = true })
	a := login(t, client(t), srv.URL, testToken)
	if cs := a.resp.Cookies(); len(cs) != 1 || !cs[0].Secure {
		t.Fatalf("cookies %+v", cs)
	}
}

// TestWrongTokensRateLimited tries wrong tokens until the limit holds
// the address back, the right token included, then waits on the fake
// clock; a flood from many addresses meets the global limit.
func TestWrongTokensRateLimited(t *testing.T) {
	srv, clk := testConsole(t, nil)
	c := client(t)
	lim := DefaultLimitConfig()
	for i := range lim.Burst {
		if a := login(t, c, srv.URL, "wrong"); a.code != http.StatusUnauthorized || !strings.Contains(a.body, "Wrong token") {
			t.Fatalf("wrong token %d: %d %s", i, a.code, a.body)
		}
	}
	a := login(t, c, srv.URL, testToken)
	if a.code != http.StatusTooManyRequests || a.resp.Header.Get("Retry-After") != "12" || len(a.resp.Cookies()) != 0 {
		t.Fatalf("the right token past the limit: %d %v", a.code, a.resp.Header)
	}
	// The bearer header meets the same limit.
	if a := do(t, c, http.MethodGet, srv.URL+PathState, nil, map[string]string{"Authorization": "Bearer " + testToken}); a.code != http.StatusTooManyRequests {
		t.Fatalf("bearer past the limit: %d", a.code)
	}
	clk.Advance(lim.Every)
	if a := login(t, c, srv.URL, testToken); a.code != http.StatusSeeOther {
		t.Fatalf("after waiting: %d %s", a.code, a.body)
	}

	// The global limit, through the limiter itself: httptest serves one
	// address only.
	l := newLimiter(lim, clk)
	for i := range lim.GlobalBurst {
		addr := "10.0.0." + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if w := l.allow(addr); w != 0 {
			t.Fatalf("address %d held back after %d failures", i, i)
		}
		l.fail(addr)
	}
	if w := l.allow("192.0.2.1"); w != lim.GlobalEvery {
		t.Fatalf("a new address past the global limit waits %v, want %v", w, lim.GlobalEvery)
	}
	clk.Advance(lim.GlobalEvery)
	if w := l.allow("192.0.2.1"); w != 0 {
		t.Fatalf("after the global wait: %v", w)
	}
}

// TestLimiterBounded: the remembered addresses never exceed
// MaxAddresses; an address past it meets the global limit alone.
func TestLimiterBounded(t *testing.T) {
	clk := clock.NewFake(t0)
	lim := LimitConfig{Burst: 1, Every: time.Minute, GlobalBurst: 1000, GlobalEvery: time.Millisecond, MaxAddresses: 3}
	l := newLimiter(lim, clk)
	for _, a := range []string{"a", "b", "c", "d"} {
		l.fail(a)
	}
	if len(l.byAddr) != 3 || l.allow("d") != 0 || l.allow("a") == 0 {
		t.Fatalf("%d addresses; d waits %v, a %v", len(l.byAddr), l.allow("d"), l.allow("a"))
	}
	clk.Advance(time.Minute)
	l.fail("e") // the full buckets make room
	if len(l.byAddr) != 1 || l.allow("e") == 0 {
		t.Fatalf("%d addresses after the refill", len(l.byAddr))
	}
}

// TestSessionsBounded: past MaxSessions the session closest to its expiry
// ends.
func TestSessionsBounded(t *testing.T) {
	clk := clock.NewFake(t0)
	s := newSessions(time.Hour, 2, clk)
	first, _ := s.create()
	clk.Advance(time.Second)
	second, _ := s.create()
	third, _ := s.create()
	if _, ok := s.lookup(first); ok {
		t.Fatal("the oldest session survived")
	}
	for _, v := range []string{second, third} {
		if _, ok := s.lookup(v); !ok {
			t.Fatal("a newer session ended")
		}
	}
	if len(s.live) != 2 {
		t.Fatalf("%d sessions", len(s.live))
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"short token", func(c *Config) { c.Token = "short" }, "Token"},
		{"no state", func(c *Config) { c.State = nil }, "State"},
		{"no ttl", func(c *Config) { c.SessionTTL = 0 }, "SessionTTL"},
		{"no sessions", func(c *Config) { c.MaxSessions = 0 }, "MaxSessions"},
		{"no limit", func(c *Config) { c.Limit.Burst = 0 }, "Limit"},
		{"no clock", func(c *Config) { c.Clock = nil }, "Clock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Token, cfg.State = testToken, testState
			tt.edit(&cfg)
			if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %s", err, tt.want)
			}
		})
	}
}
