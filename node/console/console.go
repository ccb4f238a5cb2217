package console

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coterie-mpc/coterie/clock"
)

// The console's paths on the admin API.
const (
	// PathPage serves the console, or the login form without a session.
	PathPage = "/"
	// PathAssets + a file name serves the page's script and style sheet.
	PathAssets = "/console/"
	// PathLogin takes the login form (POST): the admin token.
	PathLogin = "/login"
	// PathLogout ends the session (POST, with the session's CSRF token).
	PathLogout = "/logout"
	// PathState answers the console's State (GET), to a session cookie or
	// the bearer admin token.
	PathState = "/v1/console/state"
)

// CookieName is the session cookie's name.
const CookieName = "coterie_console"

// maxFormBytes bounds a login or logout form.
const maxFormBytes = 4 << 10

var (
	// ErrInvalidConfig is returned by New and the Validate methods for a
	// config that cannot work; the error lists every problem.
	ErrInvalidConfig = errors.New("console: invalid config")
)

//go:embed assets
var assets embed.FS

// Config configures a Console.
type Config struct {
	// NodeID names the node in the page's title.
	NodeID string
	// Token is the admin token that the login form and the bearer header
	// are checked against, in constant time.
	Token string
	// State returns what GET /v1/console/state answers. It is called once
	// per request, concurrently.
	State func() State
	// Secure marks the session cookie Secure: set it when the admin API
	// serves TLS.
	Secure bool
	// SessionTTL is how long a login lasts; MaxSessions bounds the
	// sessions kept at once (the one closest to its expiry ends first).
	SessionTTL  time.Duration
	MaxSessions int
	Limit       LimitConfig
	Clock       clock.Clock
	Logger      *slog.Logger
}

// DefaultConfig returns a config with 12-hour sessions, at most 64 of
// them, the default limits and the real clock; NodeID, Token and State
// remain to be set.
func DefaultConfig() Config {
	return Config{SessionTTL: 12 * time.Hour, MaxSessions: 64, Limit: DefaultLimitConfig(), Clock: clock.Real(), Logger: slog.Default()}
}

// minTokenBytes is the shortest admin token the console accepts to check
// against: the node's are 64 hex digits.
const minTokenBytes = 32

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Token) < minTokenBytes {
		add("Token must be at least %d bytes", minTokenBytes)
	}
	if c.State == nil {
		add("State is required")
	}
	if c.SessionTTL <= 0 {
		add("SessionTTL must be positive")
	}
	if c.MaxSessions <= 0 {
		add("MaxSessions must be positive")
	}
	if c.Limit.Burst <= 0 || c.Limit.GlobalBurst <= 0 || c.Limit.Every <= 0 || c.Limit.GlobalEvery <= 0 || c.Limit.MaxAddresses <= 0 {
		add("Limit's bursts, intervals and MaxAddresses must be positive")
	}
	if c.Clock == nil {
		add("Clock is required")
	}
	if c.Logger == nil {
		add("Logger is required")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

// Console serves the status console on an admin API: the page, its
// assets, the login form and the state JSON. It is safe for concurrent
// use.
type Console struct {
	cfg       Config
	tokenHash [sha256.Size]byte
	sessions  *sessions
	limit     *limiter
	cross     *http.CrossOriginProtection
	login     *template.Template
	page      *template.Template
	files     http.Handler
}

// New returns a Console.
func New(cfg Config) (*Console, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	login, err := template.ParseFS(assets, "assets/login.html")
	if err != nil {
		return nil, err
	}
	page, err := template.ParseFS(assets, "assets/console.html")
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, err
	}
	return &Console{
		cfg: cfg, tokenHash: sha256.Sum256([]byte(cfg.Token)),
		sessions: newSessions(cfg.SessionTTL, cfg.MaxSessions, cfg.Clock),
		limit:    newLimiter(cfg.Limit, cfg.Clock),
		// Browsers say where a POST comes from (Sec-Fetch-Site, Origin):
		// a form on another site cannot log in or out here.
		cross: http.NewCrossOriginProtection(),
		login: login, page: page,
		files: http.StripPrefix(PathAssets, http.FileServerFS(static)),
	}, nil
}

// Register adds the console's routes to mux.
func (c *Console) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathPage+"{$}", c.servePage)
	mux.HandleFunc("GET "+PathAssets+"{file}", c.serveAsset)
	mux.Handle("POST "+PathLogin, c.cross.Handler(http.HandlerFunc(c.serveLogin)))
	mux.Handle("POST "+PathLogout, c.cross.Handler(http.HandlerFunc(c.serveLogout)))
	mux.HandleFunc("GET "+PathState, c.serveState)
}

// secureHeaders keeps the console's answers out of caches and frames, and
// its page to its own script and style sheet.
func secureHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}

// session returns the request's live session.
func (c *Console) session(r *http.Request) (session, bool) {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return session{}, false
	}
	return c.sessions.lookup(ck.Value)
}

// tokenOK reports whether tok is the admin token, in constant time.
func (c *Console) tokenOK(tok string) bool {
	h := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(h[:], c.tokenHash[:]) == 1
}

// remoteHost is the request's remote address without its port: the key
// of its rate limit. Headers such as X-Forwarded-For are not trusted.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// loginData fills the login form's template.
type loginData struct {
	NodeID  string
	Message string
}

func (c *Console) render(w http.ResponseWriter, status int, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		c.cfg.Logger.Error("console page failed", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	secureHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (c *Console) loginPage(w http.ResponseWriter, status int, msg string) {
	c.render(w, status, c.login, loginData{NodeID: c.cfg.NodeID, Message: msg})
}

func (c *Console) servePage(w http.ResponseWriter, r *http.Request) {
	s, ok := c.session(r)
	if !ok {
		c.loginPage(w, http.StatusOK, "")
		return
	}
	c.render(w, http.StatusOK, c.page, struct{ NodeID, CSRF string }{c.cfg.NodeID, s.csrf})
}

func (c *Console) serveAsset(w http.ResponseWriter, r *http.Request) {
	secureHeaders(w)
	c.files.ServeHTTP(w, r)
}

// tooMany answers a client that the limiter holds back.
func tooMany(w http.ResponseWriter, wait time.Duration) string {
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return fmt.Sprintf("Too many wrong tokens: try again in %d s.", secs)
}

func (c *Console) serveLogin(w http.ResponseWriter, r *http.Request) {
	addr := remoteHost(r)
	if wait := c.limit.allow(addr); wait > 0 {
		c.loginPage(w, http.StatusTooManyRequests, tooMany(w, wait))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		c.loginPage(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	if !c.tokenOK(strings.TrimSpace(r.PostForm.Get("token"))) {
		c.limit.fail(addr)
		c.cfg.Logger.Warn("console login refused", "remote", addr)
		c.loginPage(w, http.StatusUnauthorized, "Wrong token.")
		return
	}
	value, err := c.sessions.create()
	if err != nil {
		c.cfg.Logger.Error("console session failed", "err", err)
		c.loginPage(w, http.StatusInternalServerError, "The session could not be created.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		// MaxAge, not Expires: the browser's clock need not agree with
		// the node's; the node ends the session at its own expiry.
		Name: CookieName, Value: value, Path: "/", MaxAge: int(c.cfg.SessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.cfg.Secure,
	})
	c.cfg.Logger.Info("console login", "remote", addr)
	http.Redirect(w, r, PathPage, http.StatusSeeOther)
}

func (c *Console) serveLogout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	ck, err := r.Cookie(CookieName)
	if err != nil || r.ParseForm() != nil || !c.sessions.end(ck.Value, r.PostForm.Get("csrf")) {
		secureHeaders(w)
		http.Error(w, "no session, or a wrong CSRF token", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.cfg.Secure,
	})
	http.Redirect(w, r, PathPage, http.StatusSeeOther)
}

// stateError is the JSON of a refused state request, in the admin API's
// error shape.
type stateError struct {
	Code  string `json:"code"`
	Error string `json:"error"`
}

func (c *Console) serveState(w http.ResponseWriter, r *http.Request) {
	secureHeaders(w)
	if _, ok := c.session(r); !ok {
		bearer, given := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		addr := remoteHost(r)
		if wait := c.limit.allow(addr); given && wait > 0 {
			writeJSON(w, http.StatusTooManyRequests, stateError{Code: "rate_limited", Error: tooMany(w, wait)})
			return
		}
		if !given || !c.tokenOK(bearer) {
			if given {
				c.limit.fail(addr)
			}
			writeJSON(w, http.StatusUnauthorized, stateError{Code: "unauthorized", Error: "log in, or send the admin token"})
			return
		}
	}
	writeJSON(w, http.StatusOK, c.cfg.State())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
