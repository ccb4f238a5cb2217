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
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave"
)

// Values of the token's claims that Verify looks for.
const (
	// GoogleIssuer is the Confidential Space attestation service.
	GoogleIssuer = "https://confidentialcomputing.googleapis.com"
	// DefaultAudience is the audience Coterie's evidence tokens are made
	// for. Every node of a cluster must use the same one.
	DefaultAudience = "https://coterie.invalid/cluster-join"
	swName          = "CONFIDENTIAL_SPACE"
	debugDisabled   = "disabled-since-boot"
	digestPrefix    = "sha256:"
	supportStable   = "STABLE"
)

// clockLeeway is the skew between this node's clock and the issuer's that
// a token's times tolerate: a node a second behind Google's would refuse
// fresh tokens otherwise.
const clockLeeway = 30 * time.Second

// Config configures a Verifier.
type Config struct {
	// Issuer is the token issuer, whose OpenID configuration lists its
	// keys. It must be https.
	Issuer string
	// Audience is the audience tokens must be made for.
	Audience string
	// HardwareModels are the hwmodel values admitted.
	HardwareModels []string
	// KeysTTL is how long the issuer's keys are cached.
	KeysTTL time.Duration
	// HTTPClient fetches the issuer's keys.
	HTTPClient *http.Client
	// Clock tells the time tokens and the key cache are checked against.
	Clock clock.Clock
}

// DefaultConfig returns a Config for Google's attestation service,
// DefaultAudience, AMD SEV and Intel TDX machines, keys cached for an hour,
// on the real clock.
func DefaultConfig() Config {
	return Config{
		Issuer: GoogleIssuer, Audience: DefaultAudience, HardwareModels: []string{"GCP_AMD_SEV", "GCP_INTEL_TDX"},
		KeysTTL: time.Hour, HTTPClient: &http.Client{Timeout: 10 * time.Second}, Clock: clock.Real(),
	}
}

// Validate reports every problem with c at once, or nil.
func (c Config) Validate() error {
	var errs []error
	if !strings.HasPrefix(c.Issuer, "https://") {
		errs = append(errs, fmt.Errorf("gcpcs: Issuer %q is not an https URL", c.Issuer))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("gcpcs: Audience is empty"))
	}
	if len(c.HardwareModels) == 0 {
		errs = append(errs, errors.New("gcpcs: HardwareModels is empty; it would admit no machine"))
	}
	if c.KeysTTL <= 0 {
		errs = append(errs, fmt.Errorf("gcpcs: KeysTTL %v is not positive", c.KeysTTL))
	}
	if c.HTTPClient == nil || c.Clock == nil {
		errs = append(errs, errors.New("gcpcs: HTTPClient or Clock is nil"))
	}
	return errors.Join(errs...)
}

// Verifier checks Confidential Space attestation tokens. It is safe for
// concurrent use; Verify may fetch the issuer's keys.
type Verifier struct {
	cfg    Config
	keys   *keySet
	parser *jwt.Parser
}

var _ enclave.Verifier = (*Verifier)(nil)

// New returns a Verifier, or the error of cfg.Validate.
func New(cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Verifier{
		cfg:  cfg,
		keys: &keySet{issuer: cfg.Issuer, client: cfg.HTTPClient, clock: cfg.Clock, ttl: cfg.KeysTTL},
		parser: jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(clockLeeway),
			jwt.WithTimeFunc(cfg.Clock.Now)),
	}, nil
}

// Claims are the claims of a Confidential Space token that Coterie reads.
type Claims struct {
	jwt.RegisteredClaims
	SWName      string `json:"swname"`
	DebugStatus string `json:"dbgstat"`
	HWModel     string `json:"hwmodel"`
	Nonces      nonces `json:"eat_nonce"`
	SubMods     struct {
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

// VerifyToken checks the token's signature, issuer, audience and times,
// and returns its claims. Errors: ErrMalformed, ErrBadSignature,
// ErrWrongIssuer, ErrWrongAudience, ErrExpired, ErrKeysUnavailable.
func (v *Verifier) VerifyToken(ctx context.Context, token string) (*Claims, error) {
	var claims Claims
	_, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return v.keys.key(ctx, kid)
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
// framed token whose nonces carry the report data. Besides VerifyToken's
// errors: enclave.ErrUnsupportedKind for evidence of another kind,
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
	c, err := v.VerifyToken(ctx, string(payload))
	if err != nil {
		return enclave.Identity{}, err
	}
	if c.SWName != swName || !slices.Contains(v.cfg.HardwareModels, c.HWModel) {
		return enclave.Identity{}, fmt.Errorf("%w: swname %q hwmodel %q", ErrNotConfidentialSpace, c.SWName, c.HWModel)
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
	if err := p.Check(id); err != nil {
		if id.Debug {
			return enclave.Identity{}, fmt.Errorf("%w: dbgstat %q, %s", ErrDebugMode, c.DebugStatus, id)
		}
		return enclave.Identity{}, fmt.Errorf("%w: %s", ErrDigestNotAllowed, id)
	}
	return id, nil
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
