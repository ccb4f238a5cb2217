package kmsseal

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/gcpcs"
	"github.com/coterie-mpc/coterie/enclave/internal/dataseal"
	"github.com/coterie-mpc/coterie/internal/atomicfile"
)

// aad binds Cloud KMS's ciphertext to its use: Cloud KMS refuses to
// decrypt it with any other additional authenticated data.
var aad = []byte("coterie/enclave-sealing-data-key")

var (
	providerRE = regexp.MustCompile(`^//iam\.googleapis\.com/projects/[0-9]+/locations/global/workloadIdentityPools/[a-z0-9-]{4,32}/providers/[a-z0-9-]{4,32}$`)
	keyNameRE  = regexp.MustCompile(`^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/locations/[a-z0-9-]+/keyRings/[a-zA-Z0-9_-]{1,63}/cryptoKeys/[a-zA-Z0-9_-]{1,63}$`)
)

// Config configures Open.
type Config struct {
	// Tokens gets the attestation tokens that STS exchanges: the
	// launcher (gcpcs.Launcher) in a Confidential Space VM.
	Tokens gcpcs.TokenSource
	// Provider is the workload identity pool provider, the audience of the
	// attestation token and of the token exchange:
	// //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER.
	Provider string
	// KeyName is the Cloud KMS key that wraps the data key:
	// projects/P/locations/L/keyRings/R/cryptoKeys/K.
	KeyName string
	// STSEndpoint is the token exchange URL (https).
	STSEndpoint string
	// KMSEndpoint is Cloud KMS's base URL (https).
	KMSEndpoint string
	// HTTPClient calls STS and Cloud KMS.
	HTTPClient *http.Client
	// KeyPolicy is what Seal records: code when the provider's attribute
	// condition pins the image digest, product when it admits the
	// product's later images too. The condition enforces it, not Open.
	KeyPolicy enclave.KeyPolicy
	// DataKeyFile holds Cloud KMS's encryption of the data key.
	DataKeyFile string
	// Create lets Open generate a data key when DataKeyFile does not
	// exist. Only a node's first initialisation sets it; otherwise a
	// missing file is ErrNoDataKey, not a silent new key.
	Create bool
	// Logger receives lifecycle messages.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with Google's endpoints, an HTTP client
// with a 30-second timeout, and KeyPolicyCode. The rest must be set.
func DefaultConfig() Config {
	return Config{
		STSEndpoint: DefaultSTSEndpoint, KMSEndpoint: DefaultKMSEndpoint,
		HTTPClient: &http.Client{Timeout: 30 * time.Second}, KeyPolicy: enclave.KeyPolicyCode,
	}
}

// Validate reports every problem with c at once, or nil.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("kmsseal: "+format, args...)) }
	if c.Tokens == nil {
		bad("Tokens is nil")
	}
	if !providerRE.MatchString(c.Provider) {
		bad("Provider %q is not //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER", c.Provider)
	}
	if !keyNameRE.MatchString(c.KeyName) {
		bad("KeyName %q is not projects/P/locations/L/keyRings/R/cryptoKeys/K", c.KeyName)
	}
	for name, u := range map[string]string{"STSEndpoint": c.STSEndpoint, "KMSEndpoint": c.KMSEndpoint} {
		if !strings.HasPrefix(u, "https://") {
			bad("%s %q is not https: tokens and the data key must not cross the network in the clear", name, u)
		}
	}
	if c.HTTPClient == nil {
		bad("HTTPClient is nil")
	}
	if !c.KeyPolicy.Valid() {
		bad("invalid KeyPolicy %s", c.KeyPolicy)
	}
	if c.DataKeyFile == "" {
		bad("DataKeyFile is empty")
	}
	if c.Logger == nil {
		bad("Logger is nil")
	}
	return errors.Join(errs...)
}

// AccessToken gets a fresh attestation token from cfg.Tokens for
// cfg.Provider and exchanges it at STS for a federated access token, which
// the workload's other Google calls carry (its files in Cloud Storage).
// It uses cfg's Tokens, Provider, STSEndpoint and HTTPClient.
func AccessToken(ctx context.Context, cfg Config) (string, error) {
	token, err := cfg.Tokens.Token(ctx, cfg.Provider, nil)
	if err != nil {
		return "", fmt.Errorf("kmsseal: attestation token: %w", err)
	}
	return rest{client: cfg.HTTPClient, sts: cfg.STSEndpoint}.exchange(ctx, cfg.Provider, token)
}

// Sealer seals with the data key Cloud KMS released. All methods are safe
// for concurrent use.
type Sealer struct {
	seal *dataseal.Sealer
	self enclave.Identity
}

var _ enclave.Sealer = (*Sealer)(nil)

// Open gets the node's data key from Cloud KMS, generating and wrapping it
// on first start when cfg.Create is set, and returns the Sealer. Errors:
// ErrNoDataKey, ErrBadDataKeyFile, ErrOtherKey, ErrKeyRefused,
// ErrBadResponse, ErrWrongDataKey, the token source's, and file and
// network errors.
func Open(ctx context.Context, cfg Config) (*Sealer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	file, found, err := dataseal.ReadKeyFile(cfg.DataKeyFile, fileMagic, cfg.KeyName)
	switch {
	case err != nil:
		return nil, fmt.Errorf("kmsseal: %s: %w", cfg.DataKeyFile, err)
	case !found && !cfg.Create:
		return nil, fmt.Errorf("%w: %s", ErrNoDataKey, cfg.DataKeyFile)
	}
	create := !found
	file.KeyName = cfg.KeyName

	token, err := cfg.Tokens.Token(ctx, cfg.Provider, nil)
	if err != nil {
		return nil, fmt.Errorf("kmsseal: attestation token: %w", err)
	}
	self, err := ownIdentity(token)
	if err != nil {
		return nil, err
	}
	r := rest{client: cfg.HTTPClient, sts: cfg.STSEndpoint, kms: strings.TrimSuffix(cfg.KMSEndpoint, "/")}
	access, err := r.exchange(ctx, cfg.Provider, token)
	if err != nil {
		return nil, err
	}

	var dataKey []byte
	if create {
		dataKey, file.Ciphertext, err = generate(ctx, r, access, cfg.KeyName)
	} else {
		dataKey, err = r.decrypt(ctx, access, cfg.KeyName, file.Ciphertext, aad)
	}
	if err != nil {
		return nil, err
	}
	defer clear(dataKey) // the check value also refuses a key of another size
	check := dataseal.Derive(dataKey, infoCheck)
	if create {
		file.Check = check
		if err := atomicfile.Write(cfg.DataKeyFile, file.Encode(fileMagic), 0o600); err != nil {
			return nil, fmt.Errorf("kmsseal: write %s: %w", cfg.DataKeyFile, err)
		}
	} else if !hmac.Equal(check, file.Check) {
		return nil, ErrWrongDataKey
	}

	scope := enclave.SealScope{
		Kind:           enclave.KindConfidentialSpace,
		Machine:        enclave.HashID("coterie/gcpcs/v1/machine", check),
		CodeBinding:    enclave.HashID("coterie/gcpcs/v1/code", self.Measurement),
		ProductBinding: enclave.HashID("coterie/gcpcs/v1/product", []byte(cfg.KeyName), []byte(cfg.Provider)),
	}
	sealKey := dataseal.Derive(dataKey, infoSeal)
	defer clear(sealKey)
	seal, err := dataseal.New(scope, cfg.KeyPolicy, sealKey)
	if err != nil {
		return nil, err
	}
	cfg.Logger.Info("confidential space data key ready", "key", cfg.KeyName, "created", create,
		"key_policy", cfg.KeyPolicy, "identity", self.String())
	return &Sealer{seal: seal, self: self}, nil
}

// generate makes a data key, has Cloud KMS wrap it, and unwraps it once to
// prove that this workload will get it back at its next start (the
// principal may lack the decrypt permission).
func generate(ctx context.Context, r rest, access, keyName string) ([]byte, []byte, error) {
	dataKey := make([]byte, dataKeySize)
	rand.Read(dataKey)
	ciphertext, err := r.encrypt(ctx, access, keyName, dataKey, aad)
	if err != nil {
		clear(dataKey)
		return nil, nil, err
	}
	back, err := r.decrypt(ctx, access, keyName, ciphertext, aad)
	defer clear(back)
	if err != nil {
		clear(dataKey)
		return nil, nil, err
	}
	if !hmac.Equal(back, dataKey) {
		clear(dataKey)
		return nil, nil, fmt.Errorf("%w: Cloud KMS decrypted its own ciphertext to another key", ErrWrongDataKey)
	}
	return dataKey, ciphertext, nil
}

// ownIdentity reads the workload's identity from its own launcher's
// token. The token is parsed, not verified: STS verifies it, and the
// identity only labels sealed blobs.
func ownIdentity(token string) (enclave.Identity, error) {
	var c gcpcs.Claims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &c); err != nil {
		return enclave.Identity{}, fmt.Errorf("kmsseal: own attestation token: %w: %v", gcpcs.ErrMalformed, err)
	}
	id, err := c.Identity()
	if err != nil {
		return enclave.Identity{}, fmt.Errorf("kmsseal: own attestation token: %w", err)
	}
	return id, nil
}

// Kind returns enclave.KindConfidentialSpace.
func (s *Sealer) Kind() enclave.Kind { return enclave.KindConfidentialSpace }

// KeyPolicy returns the policy Seal records.
func (s *Sealer) KeyPolicy() enclave.KeyPolicy { return s.seal.KeyPolicy() }

// Self returns the workload's identity as its attestation token states
// it, with no report data.
func (s *Sealer) Self() enclave.Identity { return s.self }

// Seal implements enclave.Sealer with AES-256-GCM under a key derived
// from the data key; the public header and ad are authenticated.
func (s *Sealer) Seal(plaintext, ad []byte) ([]byte, error) { return s.seal.Seal(plaintext, ad) }

// Unseal implements enclave.Sealer.
func (s *Sealer) Unseal(blob, ad []byte) ([]byte, error) { return s.seal.Unseal(blob, ad) }

// Derivations from the data key. Only these leave the function that holds
// the data key: the sealing key stays in memory, the check value is
// public.
const (
	infoSeal  = "coterie/gcpcs/v1/seal"
	infoCheck = "coterie/gcpcs/v1/key-check"
)
