package callback

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coterie-mpc/coterie/clock"
)

// maxRetryEntries bounds the Server's memory of retry counts. When full,
// it is cleared: retry rules are a testing aid, not an audit trail.
const maxRetryEntries = 100_000

// ServerConfig configures the reference Server. Start from
// DefaultServerConfig.
type ServerConfig struct {
	// Policy decides the answers. Required.
	Policy *Policy
	// Key signs the responses: RSA (RS256) or ECDSA P-256 (ES256).
	// Required; see GenerateKey and ParsePrivateKeyPEM.
	Key crypto.Signer
	// CosignerKeys verify the request tokens: the callback public keys of
	// the co-signer nodes (`coterie node print-public-key`). A request
	// signed by any one of them is accepted.
	CosignerKeys []*rsa.PublicKey
	// InsecureSkipRequestVerify accepts request tokens without checking
	// their signature, when no CosignerKeys are given. Tokens must still
	// be RS256, well-formed and within their exp. For development only.
	InsecureSkipRequestVerify bool
	// ResponseTTL is the exp of a response, after its iat. Default 1
	// minute.
	ResponseTTL time.Duration
	// MaxRequestBytes bounds a request body. Default 1 MiB.
	MaxRequestBytes int64
	// Clock stamps responses and checks request times. Default
	// clock.Real().
	Clock clock.Clock
	// Logger receives one line per request. Default: discard.
	Logger *slog.Logger
}

// DefaultServerConfig returns a ServerConfig with the defaults of every
// field but Policy, Key and CosignerKeys.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		ResponseTTL:     time.Minute,
		MaxRequestBytes: 1 << 20,
		Clock:           clock.Real(),
		Logger:          slog.New(slog.DiscardHandler),
	}
}

// Validate reports every problem of cfg at once, wrapped in
// ErrInvalidConfig.
func (cfg ServerConfig) Validate() error {
	_, err := cfg.validate()
	return err
}

func (cfg ServerConfig) validate() (*compiledPolicy, error) {
	policy, errs := cfg.Policy.compile()
	if cfg.Key == nil {
		errs = append(errs, errors.New("response signing key is required"))
	} else if _, err := keyAlg(cfg.Key.Public()); err != nil {
		errs = append(errs, fmt.Errorf("response signing key: %w", err))
	}
	for i, k := range cfg.CosignerKeys {
		if _, err := keyAlg(k); err != nil {
			errs = append(errs, fmt.Errorf("co-signer key %d: %w", i, err))
		}
	}
	if len(cfg.CosignerKeys) == 0 && !cfg.InsecureSkipRequestVerify {
		errs = append(errs, errors.New("no co-signer keys: give at least one, or set InsecureSkipRequestVerify"))
	}
	if cfg.ResponseTTL <= 0 || cfg.ResponseTTL > time.Hour {
		errs = append(errs, fmt.Errorf("response TTL %s not in (0, 1h]", cfg.ResponseTTL))
	}
	if cfg.MaxRequestBytes < 1024 || cfg.MaxRequestBytes > 64<<20 {
		errs = append(errs, fmt.Errorf("max request bytes %d not in [1 KiB, 64 MiB]", cfg.MaxRequestBytes))
	}
	if cfg.Clock == nil {
		errs = append(errs, errors.New("clock is nil"))
	}
	if cfg.Logger == nil {
		errs = append(errs, errors.New("logger is nil"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return policy, nil
}

// Server is the reference callback handler: an http.Handler serving
// TxPath and ConfigChangePath. It verifies each request token, decides
// with its Policy and answers a signed response token, which carries iat,
// exp and the requestTokenHash of the request token (see
// RequestTokenHash). It is safe for concurrent use; mount it at the root
// of the handler's base URL.
type Server struct {
	cfg    ServerConfig
	policy *compiledPolicy

	mu      sync.Mutex
	retries map[retryKey]int // RETRY answers given, by rule and requestId
}

type retryKey struct {
	rule      int
	requestID string
}

var _ http.Handler = (*Server)(nil)

// NewServer returns a Server for cfg.
func NewServer(cfg ServerConfig) (*Server, error) {
	policy, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if len(cfg.CosignerKeys) == 0 {
		cfg.Logger.Warn("request signatures are not verified: no co-signer keys given")
	}
	return &Server{cfg: cfg, policy: policy, retries: make(map[retryKey]int)}, nil
}

// ServeHTTP answers one request. Status codes: 200 with a response token;
// 400 for a malformed or invalid request token; 401 for one whose
// signature, algorithm or times fail; 404 and 405 for other paths and
// methods; 413 for an oversized body; 500 if signing fails.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var kind Kind
	switch r.URL.Path {
	case TxPath:
		kind = KindTransaction
	case ConfigChangePath:
		kind = KindConfigChange
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read request", http.StatusBadRequest)
		return
	}
	now := s.cfg.Clock.Now()
	req, err := decodeRequest(body, s.cfg.CosignerKeys, kind, now, len(s.cfg.CosignerKeys) > 0)
	if err != nil {
		status := http.StatusUnauthorized
		if errors.Is(err, ErrMalformed) || errors.Is(err, ErrInvalidRequest) {
			status = http.StatusBadRequest
		}
		s.cfg.Logger.Warn("callback request refused", "kind", kind, "status", status, "err", err)
		http.Error(w, err.Error(), status)
		return
	}
	d := s.decide(req)
	// Echoing the hash binds the answer to this one request token, so a
	// node that requires it cannot be given this answer for another
	// request with the same requestId.
	d.RequestTokenHash = RequestTokenHash(string(body))
	token, err := EncodeResponse(d, s.cfg.Key, now, s.cfg.ResponseTTL)
	if err != nil {
		s.cfg.Logger.Error("callback response not signed", "request_id", req.ID(), "err", err)
		http.Error(w, "cannot sign response", http.StatusInternalServerError)
		return
	}
	s.cfg.Logger.Info("callback request decided", "kind", kind, "request_id", req.ID(), "action", d.Action, "reason", d.RejectionReason)
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, token)
}

// decide applies the retry rules, then the policy's static rules.
func (s *Server) decide(req Request) Decision {
	if a, reason, ok := s.retry(req); ok {
		return Decision{Action: a, RequestID: req.ID(), RejectionReason: reason}
	}
	a, reason := s.policy.evaluate(req)
	return Decision{Action: a, RequestID: req.ID(), RejectionReason: reason}
}

// retry reports RETRY when the first matching rule has not yet used up
// its times for this requestId, and counts the answer.
func (s *Server) retry(req Request) (Action, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.policy.retry {
		rule := &s.policy.retry[i]
		if !rule.matches(req) {
			continue
		}
		key := retryKey{rule: i, requestID: req.ID()}
		n := s.retries[key]
		if n >= rule.times {
			continue
		}
		if len(s.retries) >= maxRetryEntries {
			clear(s.retries)
		}
		s.retries[key] = n + 1
		return ActionRetry, fmt.Sprintf("retry rule %d: answer %d of %d", i, n+1, rule.times), true
	}
	return 0, "", false
}
