package backend

import (
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/gcpcs"
	"github.com/coterie-mpc/coterie/enclave/nitro"
	"github.com/coterie-mpc/coterie/enclave/sim"
)

// ErrUnavailable is returned by New for an enclave kind this binary was not
// built with.
var ErrUnavailable = errors.New("backend: enclave kind not available in this build")

// Config selects and configures a backend. Fields that a kind does not use
// are ignored.
type Config struct {
	// Kind is the backend to open.
	Kind enclave.Kind
	// KeyPolicy is what the backend's sealing binds to.
	KeyPolicy enclave.KeyPolicy
	// Production refuses development-only backends (sim) with
	// sim.ErrProductionMode. The node sets it from `mode: production`.
	Production bool
	// DataDir is the node's data directory (sim keeps its root there).
	DataDir string
	// Initialize is set on a node's first initialisation, when the sim
	// backend may create its root.
	Initialize bool
	// SimPlatformKeyFile is the sim's per-machine platform key file.
	SimPlatformKeyFile string
	// SimTrustedPlatforms are other simulated machines whose evidence the
	// sim backend accepts.
	SimTrustedPlatforms []ed25519.PublicKey
	// AllowDebug lets the sgx and nitro backends run in a debug enclave,
	// whose memory the host can read: for development only.
	AllowDebug bool
	// Nitro configures the nitro backend's KMS sealing.
	Nitro NitroConfig
	// NitroRoots are the roots a Nitro document must chain to; nil means
	// the pinned AWS Nitro root. Only tests set it.
	NitroRoots *x509.CertPool
	// ConfidentialSpace configures the verifier of Confidential Space
	// tokens (its key cache and HTTP client; the issuers it trusts come
	// with each policy it is given); nil means gcpcs.DefaultConfig with
	// Clock. The gcpcs backend also calls STS and Cloud KMS with its
	// HTTPClient.
	ConfidentialSpace *gcpcs.Config
	// ConfidentialSpaceSealing configures the gcpcs backend's sealing
	// with Cloud KMS.
	ConfidentialSpaceSealing ConfidentialSpaceConfig
	// Clock tells the time that evidence of other kinds is checked
	// against; nil means the real clock.
	Clock clock.Clock
	// Logger is handed to the backend.
	Logger *slog.Logger
}

// DefaultConfig returns a Config for the sim backend with KeyPolicyProduct
// and the sim's default platform key file. DataDir must still be set.
func DefaultConfig() Config {
	s := sim.DefaultConfig()
	return Config{
		Kind:               enclave.KindSim,
		KeyPolicy:          s.KeyPolicy,
		SimPlatformKeyFile: s.PlatformKeyFile,
		Logger:             s.Logger,
	}
}

// Available returns the kinds this binary can open.
func Available() []enclave.Kind {
	kinds := []enclave.Kind{enclave.KindSim}
	if sgxAvailable {
		kinds = append(kinds, enclave.KindSGX)
	}
	if nitroAvailable {
		kinds = append(kinds, enclave.KindNitro)
	}
	if gcpcsAvailable {
		kinds = append(kinds, enclave.KindConfidentialSpace)
	}
	return kinds
}

// DataFiles returns the files, besides the sealed store, that a backend of
// kind k keeps in the data directory and needs to unseal it again: a node
// whose data directory does not outlive it keeps copies of them (node
// storage.parent). Each is sealed or public.
func DataFiles(k enclave.Kind) []string {
	switch k {
	case enclave.KindSim:
		return []string{sim.RootFile}
	case enclave.KindNitro:
		return nitroDataFiles
	case enclave.KindConfidentialSpace:
		return gcpcsDataFiles
	}
	return nil // sgx seals with the CPU's key
}

// New opens the backend cfg.Kind names. The enclave it returns verifies
// evidence of its own kind with its own verifier, and Nitro evidence on
// any backend (see Verifiers). Errors: ErrUnavailable for a kind not built
// in, sim.ErrProductionMode for sim in production, and each backend's own.
func New(cfg Config) (enclave.Enclave, error) {
	e, err := open(cfg)
	if err != nil {
		return nil, err
	}
	vs, err := Verifiers(cfg, e)
	if err != nil {
		return nil, err
	}
	return enclave.WithVerifier(e, vs), nil
}

// Verifiers returns the verifiers of every kind a node of this build can
// check, with self for its own kind:
//
//   - nitro and confidential-space evidence is checked in pure Go on any
//     node;
//   - sim evidence only by a sim node, against its trusted platforms;
//   - sgx evidence only by an sgx node: EGo verifies quotes through the
//     host's SGX quote provider (DCAP collateral), which needs cgo and
//     the provider library. A non-SGX member therefore cannot admit an
//     SGX joiner; mint the SGX joiner's token on an SGX member.
func Verifiers(cfg Config, self enclave.Verifier) (enclave.Verifiers, error) {
	ncfg := nitro.DefaultConfig()
	if cfg.NitroRoots != nil {
		ncfg.Roots = cfg.NitroRoots
	}
	if cfg.Clock != nil {
		ncfg.Clock = cfg.Clock
	}
	nv, err := nitro.New(ncfg)
	if err != nil {
		return nil, err
	}
	gcfg := gcpcs.DefaultConfig()
	if cfg.ConfidentialSpace != nil {
		gcfg = *cfg.ConfidentialSpace
	}
	if cfg.Clock != nil {
		gcfg.Clock = cfg.Clock
	}
	gv, err := gcpcs.New(gcfg)
	if err != nil {
		return nil, err
	}
	vs := enclave.Verifiers{enclave.KindNitro: nv, enclave.KindConfidentialSpace: gv}
	vs[cfg.Kind] = self
	return vs, nil
}

// CheckAvailable returns nil if this binary can run on kind k, or an error
// wrapping ErrUnavailable that says what it would take.
func CheckAvailable(k enclave.Kind) error {
	switch {
	case slices.Contains(Available(), k):
		return nil
	case k == enclave.KindSGX:
		_, err := newSGX(Config{})
		return err
	case k == enclave.KindNitro:
		_, err := newNitro(Config{})
		return err
	case k == enclave.KindConfidentialSpace:
		_, err := newConfidentialSpace(Config{})
		return err
	}
	return fmt.Errorf("%w: %s (this binary has %v)", ErrUnavailable, k, Available())
}

func open(cfg Config) (enclave.Enclave, error) {
	switch cfg.Kind {
	case enclave.KindSim:
		s := sim.DefaultConfig()
		s.DataDir = cfg.DataDir
		s.CreateRoot = cfg.Initialize
		s.PlatformKeyFile = cfg.SimPlatformKeyFile
		s.TrustedPlatforms = cfg.SimTrustedPlatforms
		s.KeyPolicy = cfg.KeyPolicy
		s.Production = cfg.Production
		s.Logger = cfg.Logger
		return sim.New(s)
	case enclave.KindSGX:
		return newSGX(cfg)
	case enclave.KindNitro:
		return newNitro(cfg)
	case enclave.KindConfidentialSpace:
		return newConfidentialSpace(cfg)
	}
	return nil, fmt.Errorf("%w: %s (this binary has %v)", ErrUnavailable, cfg.Kind, Available())
}
