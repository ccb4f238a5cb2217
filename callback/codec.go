package callback

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The two JWT algorithms this package signs and accepts.
const (
	algRS256 = "RS256"
	algES256 = "ES256"
)

// Limits of the codec.
const (
	// RequestTokenTTL is how long a request token is valid after its iat.
	RequestTokenTTL = 5 * time.Minute
	// ClockSkew is the leeway allowed when checking exp, iat and nbf.
	ClockSkew = 30 * time.Second
	// MaxResponseBytes bounds a handler's response body.
	MaxResponseBytes = 64 << 10
)

// txClaims and configClaims are the request tokens' claims: the payload's
// fields and the registered iat and exp, all at the top level.
type txClaims struct {
	TxRequest
	jwt.RegisteredClaims
}

type configClaims struct {
	ConfigChangeRequest
	jwt.RegisteredClaims
}

// responseClaims are a response token's claims. Action stays a string here
// so that an unknown action is reported as ErrBadAction, not ErrMalformed.
// RequestTokenHash is Coterie's extension of protocol v2, which binds the
// answer to one request token; v2 handlers do not send it.
type responseClaims struct {
	Action           string `json:"action"`
	RequestID        string `json:"requestId"`
	RejectionReason  string `json:"rejectionReason,omitempty"`
	RequestTokenHash string `json:"requestTokenHash,omitempty"`
	jwt.RegisteredClaims
}

// RequestTokenHash returns the value of a response's requestTokenHash
// claim for a request token: the unpadded base64url encoding of the
// SHA-256 of the compact JWT, without surrounding whitespace, exactly as
// the handler received it. A handler that echoes it binds its answer to
// that one request token, so the answer cannot be replayed for another
// request, even one with the same requestId.
func RequestTokenHash(token string) string {
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// EncodeRequest signs req with the node's callback key (RS256) and returns
// the compact JWT to POST to the handler. The token's iat is now and its
// exp is now+RequestTokenTTL. Failures wrap ErrInvalidRequest or ErrKey.
func EncodeRequest(req Request, key *rsa.PrivateKey, now time.Time) (string, error) {
	if req == nil {
		return "", fmt.Errorf("%w: nil request", ErrInvalidRequest)
	}
	if err := req.validate(); err != nil {
		return "", err
	}
	if key == nil {
		return "", fmt.Errorf("%w: no request signing key", ErrKey)
	}
	if _, err := keyAlg(&key.PublicKey); err != nil {
		return "", err
	}
	reg := jwt.RegisteredClaims{
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(RequestTokenTTL)),
	}
	var claims jwt.Claims
	switch r := req.(type) {
	case *TxRequest:
		claims = &txClaims{TxRequest: r.normalized(), RegisteredClaims: reg}
	case *ConfigChangeRequest:
		claims = &configClaims{ConfigChangeRequest: r.normalized(), RegisteredClaims: reg}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
	if err != nil {
		// Signing with a checked RSA key fails only when the claims do not
		// encode, e.g. extraInfo holding a NaN.
		return "", fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	return s, nil
}

// DecodeRequest verifies a request token against the co-signers' public
// keys (any one may have signed it) and decodes it as a request of kind k.
// The token must be RS256, carry exp, and be valid at now. Failures wrap
// ErrKey, ErrMalformed, ErrAlgorithm, ErrBadSignature, ErrExpired,
// ErrNotYetValid or ErrInvalidRequest.
func DecodeRequest(token []byte, keys []*rsa.PublicKey, k Kind, now time.Time) (Request, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no co-signer key to verify the request", ErrKey)
	}
	return decodeRequest(token, keys, k, now, true)
}

// decodeRequest is DecodeRequest, with verify false skipping only the
// signature check, for a Server that explicitly allows it.
func decodeRequest(token []byte, keys []*rsa.PublicKey, k Kind, now time.Time, verify bool) (Request, error) {
	var (
		claims jwt.Claims
		req    Request
	)
	switch k {
	case KindTransaction:
		c := &txClaims{}
		claims, req = c, &c.TxRequest
	case KindConfigChange:
		c := &configClaims{}
		claims, req = c, &c.ConfigChangeRequest
	default:
		return nil, fmt.Errorf("%w: unknown request kind %s", ErrInvalidRequest, k)
	}
	s := strings.TrimSpace(string(token))
	if s == "" {
		return nil, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{algRS256}),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(ClockSkew),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
	}
	p := jwt.NewParser(opts...)
	var (
		tok *jwt.Token
		err error
	)
	if verify {
		set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, 0, len(keys))}
		for _, key := range keys {
			if _, err := keyAlg(key); err != nil {
				return nil, err
			}
			set.Keys = append(set.Keys, key)
		}
		tok, err = p.ParseWithClaims(s, claims, func(t *jwt.Token) (any, error) {
			if !methodIs(t.Method, algRS256) {
				return nil, ErrAlgorithm
			}
			return set, nil
		})
	} else {
		tok, _, err = p.ParseUnverified(s, claims)
		if err == nil && !methodIs(tok.Method, algRS256) {
			err = ErrAlgorithm
		}
		if err == nil {
			err = jwt.NewValidator(opts...).Validate(claims)
		}
	}
	if err != nil {
		return nil, jwtError(err, tok, algRS256)
	}
	if err := req.validate(); err != nil {
		return nil, err
	}
	return req, nil
}

// EncodeResponse signs a handler's decision with the handler's key: RS256
// for an RSA key, ES256 for an ECDSA P-256 key. The token's iat is now and,
// when ttl > 0, its exp is now+ttl; d.RequestTokenHash, when set, becomes
// the requestTokenHash claim. d.Auto is not encoded. Failures wrap
// ErrBadAction, ErrInvalidRequest or ErrKey.
func EncodeResponse(d Decision, key crypto.Signer, now time.Time, ttl time.Duration) (string, error) {
	if key == nil {
		return "", fmt.Errorf("%w: no response signing key", ErrKey)
	}
	alg, err := keyAlg(key.Public())
	if err != nil {
		return "", err
	}
	if actionName(d.Action) == "" {
		return "", fmt.Errorf("%w: %s", ErrBadAction, d.Action)
	}
	if err := validateID(d.RequestID); err != nil {
		return "", err
	}
	c := responseClaims{
		Action:           d.Action.String(),
		RequestID:        d.RequestID,
		RejectionReason:  d.RejectionReason,
		RequestTokenHash: d.RequestTokenHash,
		RegisteredClaims: jwt.RegisteredClaims{
			IssuedAt: jwt.NewNumericDate(now),
		},
	}
	if ttl > 0 {
		c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	}
	method := jwt.SigningMethod(jwt.SigningMethodRS256)
	if alg == algES256 {
		method = jwt.SigningMethodES256
	}
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("%w: cannot sign with %T", ErrKey, key)
	}
	return s, nil
}

// actionName returns the protocol name of a valid action and "" otherwise.
func actionName(a Action) string {
	if a >= ActionApprove && a <= ActionIgnore {
		return actionNames[a]
	}
	return ""
}

// Expected is what DecodeResponse checks a response against: the request
// it answers, and how fresh and how closely bound to that request the
// answer must be.
type Expected struct {
	// Kind is the request's kind; the action must be allowed for it.
	Kind Kind
	// RequestID is the request's requestId, which the response must echo.
	RequestID string
	// RequestToken is the request token the response answers. A response
	// that carries requestTokenHash must carry RequestTokenHash of it.
	// Required.
	RequestToken string
	// RequireTokenHash refuses a response that carries no
	// requestTokenHash. Without it such a response is bound to the request
	// by requestId alone, as in protocol v2.
	RequireTokenHash bool
	// MaxAge bounds the response's age: its iat may lie at most MaxAge,
	// plus ClockSkew, before now. It must be positive.
	MaxAge time.Duration
	// AllowMissingIAT accepts a response that carries no iat, whose age
	// cannot be known. An iat that is present is checked all the same.
	AllowMissingIAT bool
}

// DecodeResponse verifies a handler's response body against the handler's
// public key and returns its decision about the request that want
// describes.
//
// The token's alg must match the key (RS256 for RSA, ES256 for ECDSA
// P-256). Its iat is required, unless want.AllowMissingIAT, and must lie
// within want.MaxAge before now and not in the future, with ClockSkew
// either way; exp, when present, must not be past. The requestId must
// equal want.RequestID; a requestTokenHash, when present or required,
// must be the hash of want.RequestToken; and the action must be allowed
// for want.Kind. Every failure wraps one of ErrKey, ErrInvalidConfig,
// ErrInvalidRequest, ErrResponseTooLarge, ErrMalformed, ErrAlgorithm,
// ErrBadSignature, ErrExpired, ErrNotYetValid, ErrStaleResponse,
// ErrRequestIDMismatch, ErrUnboundResponse or ErrBadAction, and comes
// with a zero Decision: a response that fails any check is never an
// approval.
func DecodeResponse(body []byte, key crypto.PublicKey, want Expected, now time.Time) (Decision, error) {
	alg, err := keyAlg(key)
	if err != nil {
		return Decision{}, err
	}
	switch {
	case want.Kind.Path() == "":
		return Decision{}, fmt.Errorf("%w: unknown request kind %s", ErrInvalidRequest, want.Kind)
	case strings.TrimSpace(want.RequestToken) == "":
		return Decision{}, fmt.Errorf("%w: no request token to check the answer against", ErrInvalidRequest)
	case want.MaxAge <= 0:
		return Decision{}, fmt.Errorf("%w: maximum answer age %s is not positive", ErrInvalidConfig, want.MaxAge)
	}
	if len(body) > MaxResponseBytes {
		return Decision{}, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, MaxResponseBytes)
	}
	s := strings.TrimSpace(string(body))
	if s == "" {
		return Decision{}, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	var c responseClaims
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{alg}),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(ClockSkew),
		jwt.WithIssuedAt(),
	)
	tok, err := p.ParseWithClaims(s, &c, func(t *jwt.Token) (any, error) {
		// WithValidMethods already refuses other algs; checking the
		// method's type as well guards against key confusion should that
		// option ever be lost.
		if !methodIs(t.Method, alg) {
			return nil, ErrAlgorithm
		}
		return key, nil
	})
	if err != nil {
		return Decision{}, jwtError(err, tok, alg)
	}
	if c.RequestID != want.RequestID {
		return Decision{}, fmt.Errorf("%w: got %q", ErrRequestIDMismatch, truncate(c.RequestID, 64))
	}
	switch {
	case c.RequestTokenHash == "" && want.RequireTokenHash:
		return Decision{}, fmt.Errorf("%w: the answer carries no requestTokenHash", ErrUnboundResponse)
	case c.RequestTokenHash != "" && c.RequestTokenHash != RequestTokenHash(want.RequestToken):
		return Decision{}, fmt.Errorf("%w: its requestTokenHash is not the hash of this request's token", ErrUnboundResponse)
	}
	switch {
	case c.IssuedAt == nil && !want.AllowMissingIAT:
		return Decision{}, fmt.Errorf("%w: the answer carries no iat", ErrStaleResponse)
	case c.IssuedAt != nil && now.Sub(c.IssuedAt.Time) > want.MaxAge+ClockSkew:
		return Decision{}, fmt.Errorf("%w: issued %s ago, more than the maximum answer age %s",
			ErrStaleResponse, now.Sub(c.IssuedAt.Time).Truncate(time.Second), want.MaxAge)
	}
	a, err := ParseAction(c.Action)
	if err != nil {
		return Decision{}, err
	}
	if !a.AllowedFor(want.Kind) {
		return Decision{}, fmt.Errorf("%w: %s is not allowed for a %s request", ErrBadAction, a, want.Kind)
	}
	return Decision{
		Action:           a,
		RequestID:        c.RequestID,
		RejectionReason:  truncate(c.RejectionReason, maxReasonLen),
		RequestTokenHash: c.RequestTokenHash,
	}, nil
}

// methodIs reports whether m is the implementation of alg for its key
// type: RSA PKCS #1 v1.5 for RS256, ECDSA for ES256.
func methodIs(m jwt.SigningMethod, alg string) bool {
	if m == nil || m.Alg() != alg {
		return false
	}
	switch alg {
	case algRS256:
		_, ok := m.(*jwt.SigningMethodRSA)
		return ok
	case algES256:
		_, ok := m.(*jwt.SigningMethodECDSA)
		return ok
	default:
		return false
	}
}

// jwtError maps a jwt parse failure onto this package's sentinels. The
// message keeps jwt's description, which never holds the token itself.
func jwtError(err error, tok *jwt.Token, want string) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	case errors.Is(err, ErrAlgorithm), tok == nil, tok.Method == nil, !methodIs(tok.Method, want):
		return fmt.Errorf("%w: alg %q, want %s", ErrAlgorithm, truncate(headerAlg(tok), 16), want)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued), errors.Is(err, jwt.ErrTokenNotValidYet):
		return ErrNotYetValid
	default:
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
}

func headerAlg(tok *jwt.Token) string {
	if tok == nil {
		return ""
	}
	s, _ := tok.Header["alg"].(string)
	return s
}
