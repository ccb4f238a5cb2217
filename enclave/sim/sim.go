package sim

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/internal/dataseal"
)

// Errors of New.
var (
	// ErrProductionMode is returned by New when Config.Production is set:
	// the simulated enclave protects nothing and production refuses it.
	ErrProductionMode = errors.New("sim: the simulated enclave protects nothing and is refused in production mode")

	// ErrNoRoot is returned by New when the data directory has no root and
	// Config.CreateRoot is not set.
	ErrNoRoot = errors.New("sim: no simulated enclave root")

	// ErrBadSecretFile is returned by New when the root or the platform key
	// file does not hold exactly 32 bytes, for example because it was
	// truncated.
	ErrBadSecretFile = errors.New("sim: simulated secret file has the wrong size")
)

// Config configures the simulated enclave.
type Config struct {
	// DataDir is the node's data directory. The sealing root lives in
	// DataDir/sim-root, mode 0600.
	DataDir string

	// CreateRoot lets New create the root when DataDir has none. Only a
	// node's first initialisation sets it; otherwise a missing root is
	// ErrNoRoot, not a silent new identity.
	CreateRoot bool

	// PlatformKeyFile holds the simulated machine's platform key: the
	// stand-in for the CPU's fused keys. Every data directory on one machine
	// shares it, so their evidence verifies against one platform key; a test
	// makes two machines by giving two files. New creates it when missing.
	PlatformKeyFile string

	// TrustedPlatforms are the platform keys of other simulated machines
	// whose evidence Verify accepts. This machine's own key is always
	// trusted.
	TrustedPlatforms []ed25519.PublicKey

	// KeyPolicy is what Seal binds keys to.
	KeyPolicy enclave.KeyPolicy

	// Measurement is the simulated code measurement, 32 bytes. When nil, New
	// uses the SHA-256 of the running executable, so that a rebuilt binary
	// is "other code" as it would be in SGX.
	Measurement []byte

	// Signer is the simulated signer, 32 bytes.
	Signer []byte

	// ProductID and SecurityVersion are the simulated product and security
	// version.
	ProductID       uint16
	SecurityVersion uint32

	// Production makes New fail with ErrProductionMode. The node sets it
	// from `mode: production`.
	Production bool

	// Logger receives the development-only warning on every start.
	Logger *slog.Logger
}

// DefaultSigner is the simulated signer of DefaultConfig.
var DefaultSigner = func() []byte { s := sha256.Sum256([]byte("coterie simulated enclave signer v1")); return s[:] }()

// DefaultConfig returns a Config with the platform key under the user's
// configuration directory, KeyPolicyProduct, the default signer, product 1
// and security version 1. DataDir must still be set.
func DefaultConfig() Config {
	cfg := Config{
		KeyPolicy:       enclave.KeyPolicyProduct,
		Signer:          DefaultSigner,
		ProductID:       1,
		SecurityVersion: 1,
		Logger:          slog.Default(),
	}
	if dir, err := os.UserConfigDir(); err == nil {
		cfg.PlatformKeyFile = filepath.Join(dir, "coterie", "sim-platform.key")
	}
	return cfg
}

// Validate reports every problem with c at once, or nil.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("sim: DataDir is empty"))
	}
	if c.PlatformKeyFile == "" {
		errs = append(errs, errors.New("sim: PlatformKeyFile is empty"))
	}
	if !c.KeyPolicy.Valid() {
		errs = append(errs, fmt.Errorf("sim: invalid KeyPolicy %s", c.KeyPolicy))
	}
	if c.Measurement != nil && len(c.Measurement) != sha256.Size {
		errs = append(errs, fmt.Errorf("sim: Measurement has %d bytes, want %d", len(c.Measurement), sha256.Size))
	}
	if len(c.Signer) != sha256.Size {
		errs = append(errs, fmt.Errorf("sim: Signer has %d bytes, want %d", len(c.Signer), sha256.Size))
	}
	for i, k := range c.TrustedPlatforms {
		if len(k) != ed25519.PublicKeySize {
			errs = append(errs, fmt.Errorf("sim: TrustedPlatforms[%d] has %d bytes, want %d", i, len(k), ed25519.PublicKeySize))
		}
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("sim: Logger is nil"))
	}
	return errors.Join(errs...)
}

// Enclave is the simulated enclave: a Sealer and an Attester for
// development and tests. It protects nothing: anyone who can read the data
// directory and the platform key file can unseal and forge evidence.
//
// All methods are safe for concurrent use.
type Enclave struct {
	policy   enclave.KeyPolicy
	scope    enclave.SealScope
	sealers  map[enclave.KeyPolicy]*dataseal.Sealer
	platform ed25519.PrivateKey
	trusted  [][]byte
	self     enclave.Identity
}

var _ enclave.Enclave = (*Enclave)(nil)

// New opens the simulated enclave of cfg.DataDir on the machine whose
// platform key is cfg.PlatformKeyFile, and logs a warning that it is for
// development only.
func New(cfg Config) (*Enclave, error) {
	if cfg.Production {
		return nil, ErrProductionMode
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	measurement := cfg.Measurement
	if measurement == nil {
		m, err := executableHash()
		if err != nil {
			return nil, err
		}
		measurement = m
	}
	seed, createdPlatform, err := loadOrCreateSecret(cfg.PlatformKeyFile, true, "platform key")
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	root, createdRoot, err := loadOrCreateSecret(filepath.Join(cfg.DataDir, RootFile), cfg.CreateRoot, "root")
	if err != nil {
		return nil, err
	}
	defer clear(root)

	e := &Enclave{
		policy:   cfg.KeyPolicy,
		platform: ed25519.NewKeyFromSeed(seed),
		sealers:  make(map[enclave.KeyPolicy]*dataseal.Sealer, 2),
	}
	e.trusted = append(e.trusted, e.PlatformKey())
	for _, k := range cfg.TrustedPlatforms {
		e.trusted = append(e.trusted, append(ed25519.PublicKey(nil), k...))
	}
	product := make([]byte, productSize)
	binary.LittleEndian.PutUint16(product, cfg.ProductID)
	e.self = enclave.Identity{
		Kind:            enclave.KindSim,
		Measurement:     clone(measurement),
		Signer:          clone(cfg.Signer),
		Product:         product,
		SecurityVersion: cfg.SecurityVersion,
	}

	var keys map[enclave.KeyPolicy][]byte
	e.scope, keys = sealKeys(root, seed, measurement, cfg.Signer, product)
	for p, key := range keys {
		s, err := dataseal.New(e.scope, p, key)
		clear(key)
		if err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
		e.sealers[p] = s
	}

	cfg.Logger.Warn("simulated enclave in use: for development only, it protects no secret and its attestation proves nothing",
		"data_dir", cfg.DataDir, "platform_key", fmt.Sprintf("%x", e.PlatformKey()),
		"created_root", createdRoot, "created_platform_key", createdPlatform)
	return e, nil
}

// sealKeys derives the sealing scope and one AES-256 key per key policy.
// The sealing secret mixes the data directory's root with a secret of the
// machine, so a data directory copied to another machine does not unseal
// there, as with a real enclave. The caller clears the keys.
func sealKeys(root, platformSeed, measurement, signer, product []byte) (enclave.SealScope, map[enclave.KeyPolicy][]byte) {
	machineSecret := dataseal.Derive(platformSeed, "coterie/sim/v1/machine-seal-secret")
	defer clear(machineSecret)
	ikm := append(append([]byte(nil), root...), machineSecret...)
	defer clear(ikm)
	sealRoot := dataseal.Derive(ikm, "coterie/sim/v1/seal-root")
	defer clear(sealRoot)
	scope := enclave.SealScope{
		Kind:           enclave.KindSim,
		Machine:        enclave.HashID("coterie/sim/v1/machine", dataseal.Derive(sealRoot, "machine-id")),
		CodeBinding:    enclave.HashID("coterie/sim/v1/code", measurement),
		ProductBinding: enclave.HashID("coterie/sim/v1/product", signer, product),
	}
	keys := map[enclave.KeyPolicy][]byte{
		enclave.KeyPolicyCode:    dataseal.Derive(sealRoot, "seal-key/code/"+string(scope.CodeBinding[:])),
		enclave.KeyPolicyProduct: dataseal.Derive(sealRoot, "seal-key/product/"+string(scope.ProductBinding[:])),
	}
	return scope, keys
}

func executableHash() ([]byte, error) {
	path, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sim: find executable to measure: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sim: open executable to measure: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("sim: measure executable: %w", err)
	}
	return h.Sum(nil), nil
}

// Kind returns enclave.KindSim.
func (e *Enclave) Kind() enclave.Kind { return enclave.KindSim }

// KeyPolicy returns the policy Seal uses.
func (e *Enclave) KeyPolicy() enclave.KeyPolicy { return e.policy }

// PlatformKey returns this simulated machine's platform public key: what
// another machine lists in Config.TrustedPlatforms to verify its evidence.
func (e *Enclave) PlatformKey() ed25519.PublicKey {
	return e.platform.Public().(ed25519.PublicKey)
}

// Self returns this enclave's own identity, with no report data: what a
// policy lists to admit peers running the same code.
func (e *Enclave) Self() enclave.Identity {
	id := e.self
	id.Measurement = append([]byte(nil), id.Measurement...)
	id.Signer = append([]byte(nil), id.Signer...)
	id.Product = append([]byte(nil), id.Product...)
	return id
}

// Seal implements enclave.Sealer with AES-256-GCM under a key derived from
// the root, the machine and the key policy's binding.
func (e *Enclave) Seal(plaintext, ad []byte) ([]byte, error) {
	return e.sealers[e.policy].Seal(plaintext, ad)
}

// Unseal implements enclave.Sealer, with the key of the policy the blob's
// header names.
func (e *Enclave) Unseal(blob, ad []byte) ([]byte, error) {
	h, _, _, err := enclave.ParseSealed(blob)
	if err != nil {
		return nil, err
	}
	s, ok := e.sealers[h.Policy]
	if !ok {
		return nil, fmt.Errorf("%w: key policy %s", enclave.ErrMalformedBlob, h.Policy)
	}
	return s.Unseal(blob, ad)
}
