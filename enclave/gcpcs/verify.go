package gcpcs

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave"
)

// Values of the token's claims that Verify looks for.
const (
	// GoogleIssuer is the Confidential Space attestation service: the
	// issuer of a confidential-space policy rule that names none.
	GoogleIssuer = "https://confidentialcomputing.googleapis.com"
	// Audience is the audience of Coterie's evidence tokens: the Attester
	// asks for it and Verify requires it. It is fixed, not configured, as
	// a joiner asks for its token before it knows the cluster's policy;
	// the nonces, not the audience, bind a token to one join.
	Audience      = "https://coterie.invalid/cluster-join"
	swName        = "CONFIDENTIAL_SPACE"
	debugDisabled = "disabled-since-boot"
	digestPrefix  = "sha256:"
	supportStable = "STABLE"
)

// defaultHardwareModels are the hwmodel values a confidential-space rule
// that names none admits: AMD SEV and Intel TDX machines.
var defaultHardwareModels = []string{"GCP_AMD_SEV", "GCP_INTEL_TDX"}

// clockLeeway is the skew between this node's clock and the issuer's that
// a token's times tolerate: a node a second behind Google's would refuse
// fresh tokens otherwise.
const clockLeeway = 30 * time.Second

// Config configures a Verifier. The trust anchors (issuers and hardware
// models) are not here: they come with the policy each Verify is given.
type Config struct {
	// KeysTTL is how long an issuer's keys are cached.
	KeysTTL time.Duration
	// HTTPClient fetches the issuers' keys.
	HTTPClient *http.Client
	// Clock tells the time tokens and the key cache are checked against.
	Clock clock.Clock
}

// DefaultConfig returns a Config with keys cached for an hour, fetched
// with a 10 s timeout, on the real clock.
func DefaultConfig() Config {
	return Config{KeysTTL: time.Hour, HTTPClient: &http.Client{Timeout: 10 * time.Second}, Clock: clock.Real()}
}

// Validate reports every problem with c at once, or nil.
func (c Config) Validate() error {
	var errs []error
	if c.KeysTTL <= 0 {
		errs = append(errs, fmt.Errorf("gcpcs: KeysTTL %v is not positive", c.KeysTTL))
	}
	if c.HTTPClient == nil || c.Clock == nil {
		errs = append(errs, errors.New("gcpcs: HTTPClient or Clock is nil"))
	}
	return errors.Join(errs...)
}

// Verifier checks Confidential Space attestation tokens. It is safe for
// concurrent use; Verify may fetch an issuer's keys.
type Verifier struct {
	cfg Config

	mu sync.Mutex
	// keys holds a key set per issuer that a policy given to Verify
	// named, so each keeps its own fetch bound and cache. Only a policy
	// adds an issuer here, never a token alone; on a member the policy is
	// the cluster's, from the raft log, which admins change rarely.
	keys map[string]*keySet
}

var _ enclave.Verifier = (*Verifier)(nil)

// New returns a Verifier, or the error of cfg.Validate.
func New(cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Verifier{cfg: cfg, keys: make(map[string]*keySet)}, nil
}

// keySet returns issuer's key set, made on first use.
func (v *Verifier) keySet(issuer string) *keySet {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.keys[issuer]
	if !ok {
		s = &keySet{issuer: issuer, client: v.cfg.HTTPClient, clock: v.cfg.Clock, ttl: v.cfg.KeysTTL}
		v.keys[issuer] = s
	}
	return s
}

// Claims are the claims of a Confidential Space token that Coterie reads.
type Claims struct {
	jwt.RegisteredClaims
	SWName      string `json:"swname"`
	DebugStatus string `json:"dbgstat"`
	HWModel     string `json:"hwmodel"`
	// SecureBoot says the VM booted with UEFI Secure Boot, so its boot
	// chain is Google's signed one.
	SecureBoot bool   `json:"secboot"`
	Nonces     nonces `json:"eat_nonce"`
	SubMods    struct {
		Container struct {
			ImageReference string `json:"image_reference"`
			ImageDigest    string `json:"image_digest"`
		} `json:"container"`
		ConfidentialSpace struct {
			// SupportAttributes says how Google supports the
			// Confidential Space image the VM booted: STABLE for a
			// production image still under support.
			SupportAttributes []string `json:"support_attributes"`
		} `json:"confidential_space"`
	} `json:"submods"`
}

// nonces is eat_nonce: one string, or an array of them.
type nonces []string

func (n *nonces) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*n = nonces{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(n))
}

// verifyToken checks that token is issuer's, with issuer's keys, and its
// audience and times, and returns its claims. The caller vouches for
// issuer (a policy names it): its keys are fetched. Errors: ErrMalformed,
// ErrBadSignature, ErrWrongIssuer, ErrWrongAudience, ErrExpired,
// ErrKeysUnavailable.
func (v *Verifier) verifyToken(ctx context.Context, token, issuer string) (*Claims, error) {
	keys := v.keySet(issuer)
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(issuer), jwt.WithAudience(Audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(clockLeeway), jwt.WithTimeFunc(v.cfg.Clock.Now))
	var claims Claims
	_, err := parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return keys.key(ctx, kid)
	})
	switch {
	case err == nil:
		return &claims, nil
	case errors.Is(err, ErrKeysUnavailable) || errors.Is(err, ErrBadSignature):
		return nil, err
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) || errors.Is(err, jwt.ErrTokenUnverifiable):
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return nil, fmt.Errorf("%w: %v", ErrWrongIssuer, err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return nil, fmt.Errorf("%w: %v", ErrWrongAudience, err)
	case errors.Is(err, jwt.ErrTokenExpired) || errors.Is(err, jwt.ErrTokenNotValidYet) || errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return nil, fmt.Errorf("%w: %v", ErrExpired, err)
	default:
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
}

// Verify implements enclave.Verifier for confidential-space evidence: a
// framed token whose nonces carry the report data. The policy's
// confidential-space rules are the only trust anchors: the token must
// name, in iss, an issuer one of them admits (ErrWrongIssuer, before any
// key is fetched), and only the rules that admit its issuer and hwmodel
// may admit its image. Errors: ErrMalformed, ErrWrongIssuer,
// ErrBadSignature, ErrWrongAudience, ErrExpired, ErrKeysUnavailable,
// enclave.ErrUnsupportedKind for evidence of another kind,
// ErrNotConfidentialSpace, ErrNonceMismatch, ErrDebugMode,
// ErrDigestNotAllowed, and enclave.ErrInvalidPolicy.
func (v *Verifier) Verify(ctx context.Context, evidence []byte, p enclave.Policy) (enclave.Identity, error) {
	if err := p.Validate(); err != nil {
		return enclave.Identity{}, err
	}
	kind, payload, err := enclave.ParseEvidence(evidence)
	if err != nil {
		return enclave.Identity{}, err
	}
	if kind != enclave.KindConfidentialSpace {
		return enclave.Identity{}, fmt.Errorf("%w: the confidential-space verifier got %s evidence", enclave.ErrUnsupportedKind, kind)
	}
	issuer, err := unverifiedIssuer(string(payload))
	if err != nil {
		return enclave.Identity{}, err
	}
	rules := slices.DeleteFunc(slices.Clone(p.Allow), func(r enclave.Rule) bool {
		return r.Kind != enclave.KindConfidentialSpace || ruleIssuer(r) != issuer
	})
	if len(rules) == 0 {
		return enclave.Identity{}, fmt.Errorf("%w: %q", ErrWrongIssuer, issuer)
	}
	c, err := v.verifyToken(ctx, string(payload), issuer)
	if err != nil {
		return enclave.Identity{}, err
	}
	rules = slices.DeleteFunc(rules, func(r enclave.Rule) bool { return !slices.Contains(ruleHardwareModels(r), c.HWModel) })
	if c.SWName != swName || len(rules) == 0 {
		return enclave.Identity{}, fmt.Errorf("%w: swname %q hwmodel %q", ErrNotConfidentialSpace, c.SWName, c.HWModel)
	}
	if !c.SecureBoot {
		return enclave.Identity{}, fmt.Errorf("%w: the VM did not boot with Secure Boot (secboot false)", ErrNotConfidentialSpace)
	}
	rd, err := ReportData(c.Nonces)
	if err != nil {
		return enclave.Identity{}, err
	}
	id, err := c.Identity()
	if err != nil {
		return enclave.Identity{}, err
	}
	id.ReportData = rd
	if attrs := c.SubMods.ConfidentialSpace.SupportAttributes; !id.Debug && !slices.Contains(attrs, supportStable) {
		// Google's own advice for key release: a production image still
		// under support.
		return enclave.Identity{}, fmt.Errorf("%w: the Confidential Space image is not %s (support_attributes %q)",
			ErrNotConfidentialSpace, supportStable, attrs)
	}
	if err := (enclave.Policy{Allow: rules}).Check(id); err != nil {
		if id.Debug {
			return enclave.Identity{}, fmt.Errorf("%w: dbgstat %q, %s", ErrDebugMode, c.DebugStatus, id)
		}
		return enclave.Identity{}, fmt.Errorf("%w: %s", ErrDigestNotAllowed, id)
	}
	return id, nil
}

// unverifiedIssuer returns the iss claim of token without checking
// anything else: only to choose the rules, and the keys, to check it with.
func unverifiedIssuer(token string) (string, error) {
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &claims); err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return claims.Issuer, nil
}

// ruleIssuer is the issuer whose tokens r admits.
func ruleIssuer(r enclave.Rule) string {
	if r.Issuer == "" {
		return GoogleIssuer
	}
	return r.Issuer
}

// ruleHardwareModels are the hwmodel values r admits.
func ruleHardwareModels(r enclave.Rule) []string {
	if len(r.HardwareModels) == 0 {
		return defaultHardwareModels
	}
	return r.HardwareModels
}

// Identity returns the workload the claims describe: the container image
// digest as the measurement, and Debug for any dbgstat but
// disabled-since-boot. It sets no report data, and checks nothing but the
// digest's form (ErrMalformed).
func (c *Claims) Identity() (enclave.Identity, error) {
	digest, err := hex.DecodeString(strings.TrimPrefix(c.SubMods.Container.ImageDigest, digestPrefix))
	if err != nil || !strings.HasPrefix(c.SubMods.Container.ImageDigest, digestPrefix) || len(digest) != enclave.ImageDigestSize {
		return enclave.Identity{}, fmt.Errorf("%w: image digest %q", ErrMalformed, c.SubMods.Container.ImageDigest)
	}
	return enclave.Identity{Kind: enclave.KindConfidentialSpace, Measurement: digest, Debug: c.DebugStatus != debugDisabled}, nil
}

// Nonces returns the eat_nonce values that carry reportData (padded to
// enclave.MaxReportData): "0" and "1" followed by the hex of each half, 65
// bytes each, within the launcher's 10 to 74.
func Nonces(reportData []byte) ([]string, error) {
	rd, err := enclave.PadReportData(reportData)
	if err != nil {
		return nil, err
	}
	half := enclave.MaxReportData / 2
	return []string{"0" + hex.EncodeToString(rd[:half]), "1" + hex.EncodeToString(rd[half:])}, nil
}

// ReportData returns the report data that nonces carry, or an error
// wrapping ErrNonceMismatch. The nonces may come in any order, and others
// may sit beside them.
func ReportData(ns []string) ([]byte, error) {
	halves := make([][]byte, 2)
	for _, n := range ns {
		if len(n) != 1+enclave.MaxReportData || (n[0] != '0' && n[0] != '1') {
			continue
		}
		b, err := hex.DecodeString(n[1:])
		if err != nil {
			continue
		}
		i := n[0] - '0'
		if halves[i] != nil && !bytes.Equal(halves[i], b) {
			return nil, fmt.Errorf("%w: two different halves %c", ErrNonceMismatch, n[0])
		}
		halves[i] = b
	}
	if halves[0] == nil || halves[1] == nil {
		return nil, fmt.Errorf("%w: %d nonces, without both halves of the report data", ErrNonceMismatch, len(ns))
	}
	return append(halves[0], halves[1]...), nil
}
