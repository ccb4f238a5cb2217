package callback

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/cluster/audit"
)

// Bounds of Config's durations, exported so that a node can check its
// settings before it builds a Config.
const (
	// MaxTimeout bounds Config.Timeout.
	MaxTimeout = 10 * time.Minute
	// MaxAnswerAgeLimit bounds Config.MaxAnswerAge.
	MaxAnswerAgeLimit = time.Hour
)

// Config configures a Client. Start from DefaultConfig.
type Config struct {
	// URL is the handler's base URL; the endpoint paths are appended to
	// it. It must be https, or http to a loopback host (127.0.0.0/8, ::1,
	// localhost) for development, and carry no user info, query or
	// fragment. Empty means no handler is configured: every request is
	// approved automatically, as the seed product does.
	URL string
	// HandlerKey verifies the handler's responses: an RSA key (RS256) or
	// an ECDSA P-256 key (ES256). Required with URL; see ParsePublicKeyPEM.
	HandlerKey crypto.PublicKey
	// SigningKey is the node's callback key, which signs requests
	// (RS256). Required with URL.
	SigningKey *rsa.PrivateKey
	// RootCAs verifies an https handler's certificate. Nil uses the
	// system's roots.
	RootCAs *x509.CertPool
	// Dial connects to the handler's host:port; nil dials directly. A node
	// without a network of its own dials through its egress proxy.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds one attempt, from sending the request to reading the
	// whole response, measured on Clock. Default 30 seconds.
	Timeout time.Duration
	// Retry is the retry budget for RETRY answers and retryable
	// failures. The Client makes one attempt per Ask and never waits: the
	// caller (the node's callback actor) calls Retry.Next between
	// attempts. Default DefaultBackoff().
	Retry Backoff
	// MaxAnswerAge bounds how old an answer may be when it arrives: its
	// iat must lie at most MaxAnswerAge (plus ClockSkew) in the past, so
	// that an answer recorded earlier cannot be played back for long.
	// Default 2 minutes, at most MaxAnswerAgeLimit.
	MaxAnswerAge time.Duration
	// AllowAnswersWithoutIAT accepts answers that carry no iat, for
	// handlers that cannot send one. Their age cannot be checked, so such
	// an answer could be replayed at any later time: turn on
	// RequireRequestTokenHash too where the handler can send it. An iat
	// that is present is always checked. Default false.
	AllowAnswersWithoutIAT bool
	// RequireRequestTokenHash refuses answers that do not carry the
	// requestTokenHash claim, the hash of the request token they answer
	// (see RequestTokenHash), which binds an answer to one request token.
	// Protocol v2 handlers do not send it, so the default is false and
	// such answers are bound by requestId alone; the reference Server
	// always sends it. An answer that carries the claim is checked
	// whatever this says.
	RequireRequestTokenHash bool
	// Clock times attempts and backoff and checks token times. Default
	// clock.Real().
	Clock clock.Clock
	// Logger receives the client's logs. Default: discard.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with no handler (automatic approval) and
// the defaults of every other field.
func DefaultConfig() Config {
	return Config{
		Timeout:      30 * time.Second,
		MaxAnswerAge: 2 * time.Minute,
		Retry:        DefaultBackoff(),
		Clock:        clock.Real(),
		Logger:       slog.New(slog.DiscardHandler),
	}
}

// Validate reports every problem of cfg at once, wrapped in
// ErrInvalidConfig.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.URL != "" {
		if err := CheckURL(cfg.URL); err != nil {
			errs = append(errs, err)
		}
		if cfg.HandlerKey == nil {
			errs = append(errs, errors.New("handler public key is required with a handler URL"))
		} else if _, err := keyAlg(cfg.HandlerKey); err != nil {
			errs = append(errs, fmt.Errorf("handler public key: %w", err))
		}
		if cfg.SigningKey == nil {
			errs = append(errs, errors.New("request signing key is required with a handler URL"))
		} else if _, err := keyAlg(&cfg.SigningKey.PublicKey); err != nil {
			errs = append(errs, fmt.Errorf("request signing key: %w", err))
		}
	}
	if cfg.Timeout <= 0 || cfg.Timeout > MaxTimeout {
		errs = append(errs, fmt.Errorf("timeout %s not in (0, %s]", cfg.Timeout, MaxTimeout))
	}
	if cfg.MaxAnswerAge <= 0 || cfg.MaxAnswerAge > MaxAnswerAgeLimit {
		errs = append(errs, fmt.Errorf("max answer age %s not in (0, %s]", cfg.MaxAnswerAge, MaxAnswerAgeLimit))
	}
	errs = append(errs, cfg.Retry.problems()...)
	if cfg.Clock == nil {
		errs = append(errs, errors.New("clock is nil"))
	}
	if cfg.Logger == nil {
		errs = append(errs, errors.New("logger is nil"))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

// Client asks one API user's callback handler about requests. It is safe
// for concurrent use.
type Client struct {
	cfg  Config
	base string
	http *http.Client
	// keyID names HandlerKey in the decisions (Decision.KeyID).
	keyID string
}

// New returns a Client for cfg. With an empty cfg.URL the Client approves
// every request by itself.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, base: strings.TrimRight(cfg.URL, "/"), keyID: audit.AutoKeyID}
	if c.base == "" {
		cfg.Logger.Info("no callback handler configured: requests are approved automatically")
		return c, nil
	}
	dial := cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dial,
		TLSClientConfig:     &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	der, err := x509.MarshalPKIXPublicKey(cfg.HandlerKey)
	if err != nil {
		return nil, fmt.Errorf("%w: handler key: %v", ErrKey, err)
	}
	c.keyID = audit.KeyID(der)
	c.http = &http.Client{
		Transport: transport,
		// A signed request goes to the configured handler only: a
		// redirect is answered as a StatusError.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// AutoApprove reports whether the Client has no handler and approves every
// request by itself.
func (c *Client) AutoApprove() bool { return c.base == "" }

// Close releases the Client's idle connections. The Client stays usable.
func (c *Client) Close() {
	if c.http != nil {
		c.http.CloseIdleConnections()
	}
}

// Ask makes one attempt to obtain the handler's decision about req, and
// does not retry. It returns within Config.Timeout on the Clock, or when
// ctx is done.
//
// Without a handler it returns an automatic APPROVE (Decision.Auto). A
// RETRY answer is returned as a Decision with a nil error; the caller
// retries after Config.Retry.Next. Every failure returns a zero Decision
// and an error wrapping a sentinel: Retryable tells whether asking again
// may help. When ctx is canceled, the error wraps context.Cause(ctx) and
// is not retryable; when ctx's deadline passes, it wraps ErrTimeout.
func (c *Client) Ask(ctx context.Context, req Request) (Decision, error) {
	if req == nil {
		return Decision{}, fmt.Errorf("%w: nil request", ErrInvalidRequest)
	}
	if err := req.validate(); err != nil {
		return Decision{}, err
	}
	if c.AutoApprove() {
		return Decision{Action: ActionApprove, RequestID: req.ID(), Auto: true, KeyID: c.keyID}, nil
	}
	start := c.cfg.Clock.Now()
	token, err := EncodeRequest(req, c.cfg.SigningKey, start)
	if err != nil {
		return Decision{}, err
	}
	body, err := c.post(ctx, req.Kind().Path(), token)
	var d Decision
	if err == nil {
		d, err = DecodeResponse(body, c.cfg.HandlerKey, Expected{
			Kind:             req.Kind(),
			RequestID:        req.ID(),
			RequestToken:     token,
			RequireTokenHash: c.cfg.RequireRequestTokenHash,
			MaxAge:           c.cfg.MaxAnswerAge,
			AllowMissingIAT:  c.cfg.AllowAnswersWithoutIAT,
		}, c.cfg.Clock.Now())
	}
	elapsed := c.cfg.Clock.Now().Sub(start)
	if err != nil {
		c.cfg.Logger.Debug("callback attempt failed", "request_id", req.ID(), "kind", req.Kind(), "elapsed", elapsed, "err", err)
		return Decision{}, err
	}
	d.KeyID = c.keyID
	c.cfg.Logger.Debug("callback answered", "request_id", req.ID(), "kind", req.Kind(), "elapsed", elapsed, "action", d.Action)
	return d, nil
}

// post sends the token and returns the 200 response's body.
func (c *Client) post(ctx context.Context, path, token string) ([]byte, error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	t := c.cfg.Clock.AfterFunc(c.cfg.Timeout, func() { cancel(ErrTimeout) })
	defer t.Stop()

	hreq, err := http.NewRequestWithContext(actx, http.MethodPost, c.base+path, strings.NewReader(token))
	if err != nil {
		return nil, fmt.Errorf("%w: cannot build request", ErrUnreachable)
	}
	hreq.Header.Set("Content-Type", "text/plain")
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, c.transportError(ctx, actx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, c.transportError(ctx, actx, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{Code: resp.StatusCode}
	}
	if len(body) > MaxResponseBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, MaxResponseBytes)
	}
	return body, nil
}

// transportError classifies a failure to exchange the request.
func (c *Client) transportError(parent, actx context.Context, err error) error {
	switch {
	case errors.Is(context.Cause(actx), ErrTimeout) && parent.Err() == nil:
		return fmt.Errorf("%w: no answer within %s", ErrTimeout, c.cfg.Timeout)
	case errors.Is(parent.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: the caller's deadline passed", ErrTimeout)
	case parent.Err() != nil:
		return fmt.Errorf("callback: attempt abandoned: %w", context.Cause(parent))
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		// url.Error repeats the method and URL; the cause is enough.
		err = uerr.Err
	}
	return fmt.Errorf("%w: %v", ErrUnreachable, err)
}
