package cosigner

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/enclave/sim"
	"github.com/coterie-mpc/coterie/internal/atomicfile"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/store"
)

var (
	// ErrNodeMessage is returned by Run when the node sent an envelope that
	// a cloud co-signer rejected, or one that claims another sender or names
	// an unknown recipient. The session is over.
	ErrNodeMessage = errors.New("cosigner: the node sent a bad MPC message")
	// ErrNodeGone is returned by Run when an envelope for the node could not
	// be sent: the node left before the session finished.
	ErrNodeGone = errors.New("cosigner: the node left the session before it finished")
	// ErrBusy is returned by Run when a SIGN session for the same digest is
	// already running.
	ErrBusy = errors.New("cosigner: this digest is already being signed")
	// ErrNotConfigured is returned by Run when the user's key names a cloud
	// co-signer that this workspace does not run.
	ErrNotConfigured = errors.New("cosigner: a party of the user's key is not configured here")
	// ErrBadStart is returned by Run for a session start that does not fit:
	// an unknown kind, a malformed session or presignature ID.
	ErrBadStart = errors.New("cosigner: bad session start")
	// ErrDisagree is returned when the cloud co-signers' results differ,
	// which a correct protocol never produces.
	ErrDisagree = errors.New("cosigner: cloud co-signers disagree on the result")
	// ErrEpochMismatch is returned when a session names key shares the cloud
	// co-signers neither hold nor have staged from a refresh.
	ErrEpochMismatch = errors.New("cosigner: key share epoch mismatch")
)

// Config configures the cloud co-signers.
type Config struct {
	// Dir holds one subdirectory per cloud co-signer, each with its
	// simulated enclave's root and its sealed keyring.
	Dir string
	// PlatformKeyFile is the simulated machine's platform key, shared by the
	// co-signers' simulated enclaves.
	PlatformKeyFile string
	// Count is the number of cloud co-signers: 1 or 2.
	Count int
	// Quorum is how many parties sign, the node included: 2 to Count+1. CMP's
	// threshold is Quorum-1.
	Quorum int
	// NodeParty is the MPC party ID of every user's co-signer node.
	NodeParty mpc.PartyID
	// Store is the workspace store.
	Store *store.Store
	// Engine configures the MPC engine.
	Engine mpc.Config
	// SessionTimeout bounds one relay session; key generation with three
	// parties takes about ten seconds of CPU.
	SessionTimeout time.Duration
	// KeyShareCache is how many decoded key shares (one per user and cloud
	// co-signer) stay in memory between sessions; decoding one costs
	// milliseconds. 0 decodes the share for every session.
	KeyShareCache int
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns two cloud co-signers signing 3-of-3 with the node,
// party ID "cosigner" for the node, a five-minute session bound and up to
// 1024 cached key shares. Dir, PlatformKeyFile and Store must still be set.
func DefaultConfig() Config {
	return Config{
		Count:          2,
		Quorum:         3,
		NodeParty:      "cosigner",
		Engine:         mpc.DefaultConfig(),
		SessionTimeout: 5 * time.Minute,
		KeyShareCache:  1024,
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("cosigner: Dir is empty"))
	}
	if c.PlatformKeyFile == "" {
		errs = append(errs, errors.New("cosigner: PlatformKeyFile is empty"))
	}
	if c.Count < 1 || c.Count > 2 {
		errs = append(errs, fmt.Errorf("cosigner: Count must be 1 or 2, got %d", c.Count))
	}
	if c.Quorum < 2 || c.Quorum > c.Count+1 {
		errs = append(errs, fmt.Errorf("cosigner: Quorum must be 2 to Count+1 (%d), got %d", c.Count+1, c.Quorum))
	}
	if err := c.NodeParty.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("cosigner: NodeParty: %w", err))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("cosigner: Store is nil"))
	}
	if err := c.Engine.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.SessionTimeout <= 0 {
		errs = append(errs, fmt.Errorf("cosigner: SessionTimeout must be positive, got %s", c.SessionTimeout))
	}
	if c.KeyShareCache < 0 {
		errs = append(errs, fmt.Errorf("cosigner: KeyShareCache must not be negative, got %d", c.KeyShareCache))
	}
	return errors.Join(errs...)
}

// Plan is the party layout of new keys.
type Plan struct {
	// NodeParty is the node's party ID.
	NodeParty mpc.PartyID
	// CloudParties are the cloud co-signers' party IDs.
	CloudParties []mpc.PartyID
	// Signers are the parties that presign and sign: the node and the first
	// Quorum-1 cloud co-signers.
	Signers []mpc.PartyID
	// Threshold is CMP's threshold, Quorum-1.
	Threshold int
}

// Cosigners is the set of cloud co-signers. See the package documentation.
type Cosigners struct {
	cfg     Config
	log     *slog.Logger
	engine  *mpc.Engine
	store   *store.Store
	parties map[mpc.PartyID]*party
	plan    Plan
	shares  *shareCache
	derived *derivedKeys

	mu      sync.Mutex
	signing map[string]struct{} // request/digest pairs with a SIGN session running
}

// party is one cloud co-signer.
type party struct {
	id mpc.PartyID
	kr *keyring.Keyring
}

// measurement is the simulated code measurement of the cloud co-signers, so
// that their sealed keyrings survive a rebuilt binary.
var measurement = func() []byte { m := sha256.Sum256([]byte("coterie workspace cloud co-signer v1")); return m[:] }()

// derivedKeyCache is how many derived public keys stay cached: a few per
// user (one per asset and vault account path) for many users.
const derivedKeyCache = 4096

// keyringFile is where each cloud co-signer keeps its sealed keyring.
const keyringFile = "keyring.sealed"

// New opens the cloud co-signers, creating each one's enclave root and
// keyring on first use.
func New(cfg Config) (*Cosigners, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	engine, err := mpc.New(cfg.Engine)
	if err != nil {
		return nil, err
	}
	c := &Cosigners{
		cfg: cfg, log: log, engine: engine, store: cfg.Store,
		parties: make(map[mpc.PartyID]*party),
		signing: make(map[string]struct{}),
		shares:  newShareCache(cfg.KeyShareCache),
		derived: newDerivedKeys(derivedKeyCache),
	}
	c.plan = Plan{NodeParty: cfg.NodeParty, Threshold: cfg.Quorum - 1, Signers: []mpc.PartyID{cfg.NodeParty}}
	for i := range cfg.Count {
		id := mpc.PartyID(partyID(i + 1))
		p, err := openParty(cfg, log, id)
		if err != nil {
			return nil, err
		}
		c.parties[id] = p
		c.plan.CloudParties = append(c.plan.CloudParties, id)
		if i < cfg.Quorum-1 {
			c.plan.Signers = append(c.plan.Signers, id)
		}
	}
	slices.Sort(c.plan.Signers)
	return c, nil
}

func openParty(cfg Config, log *slog.Logger, id mpc.PartyID) (*party, error) {
	dir := filepath.Join(cfg.Dir, string(id))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cosigner: %s: %w", id, err)
	}
	path := filepath.Join(dir, keyringFile)
	sealed, err := os.ReadFile(path)
	first := errors.Is(err, os.ErrNotExist)
	if err != nil && !first {
		return nil, fmt.Errorf("cosigner: %s: read keyring: %w", id, err)
	}
	simCfg := sim.DefaultConfig()
	simCfg.DataDir = dir
	simCfg.CreateRoot = first
	simCfg.PlatformKeyFile = cfg.PlatformKeyFile
	simCfg.Measurement = measurement
	simCfg.Logger = log.With("cloud_cosigner", string(id))
	var sealer enclave.Sealer
	if sealer, err = sim.New(simCfg); err != nil {
		return nil, fmt.Errorf("cosigner: %s: open enclave: %w", id, err)
	}
	if !first {
		kr, err := keyring.Open(sealer, sealed)
		if err != nil {
			return nil, fmt.Errorf("cosigner: %s: %w", id, err)
		}
		return &party{id: id, kr: kr}, nil
	}
	kr, err := keyring.Generate()
	if err != nil {
		return nil, fmt.Errorf("cosigner: %s: %w", id, err)
	}
	if sealed, err = kr.MarshalSealed(sealer); err != nil {
		return nil, fmt.Errorf("cosigner: %s: %w", id, err)
	}
	if err := atomicfile.Write(path, sealed, 0o600); err != nil {
		return nil, fmt.Errorf("cosigner: %s: write keyring: %w", id, err)
	}
	return &party{id: id, kr: kr}, nil
}

// Existing returns how many cloud co-signers dir (Config.Dir) holds: the
// number of cloud-1, cloud-2, ... in a row that have their keyring.
func Existing(dir string) (int, error) {
	n := 0
	for {
		_, err := os.Stat(filepath.Join(dir, partyID(n+1), keyringFile))
		if errors.Is(err, os.ErrNotExist) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("cosigner: %w", err)
		}
		n++
	}
}

// partyID names the i-th cloud co-signer, from 1.
func partyID(i int) string { return fmt.Sprintf("cloud-%d", i) }

// Plan returns the party layout that key generation uses.
func (c *Cosigners) Plan() Plan {
	p := c.plan
	p.CloudParties = slices.Clone(p.CloudParties)
	p.Signers = slices.Clone(p.Signers)
	return p
}

// Record IDs bind each ciphertext to its record (keyring associated data).
func shareRecord(userID string, p mpc.PartyID) string {
	return "workspace/keyshare/" + userID + "/" + string(p)
}

func presigRecord(userID string, id mpc.PresignatureID, p mpc.PartyID) string {
	return "workspace/presignature/" + userID + "/" + id.String() + "/" + string(p)
}

func (c *Cosigners) party(id string) (*party, error) {
	p, ok := c.parties[mpc.PartyID(id)]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotConfigured, id)
	}
	return p, nil
}

// loadShare returns a cloud co-signer's key share of a user: the cached
// share when the stored ciphertext is still the one it was decrypted from,
// otherwise the decrypted and decoded ciphertext, which it caches.
func (c *Cosigners) loadShare(userID string, p *party) (*mpc.KeyShare, error) {
	ct, err := c.store.CloudKeyShare(userID, string(p.id))
	if err != nil {
		return nil, err
	}
	if share, ok := c.shares.get(userID, p.id, ct); ok {
		return share, nil
	}
	plain, err := p.kr.Decrypt(shareRecord(userID, p.id), ct)
	if err != nil {
		return nil, fmt.Errorf("cosigner: %s: key share of %s: %w", p.id, userID, err)
	}
	defer clear(plain)
	share, err := mpc.UnmarshalKeyShare(plain)
	if err != nil {
		return nil, err
	}
	c.shares.put(userID, p.id, ct, share)
	return share, nil
}

func (c *Cosigners) sealShare(userID string, p *party, share *mpc.KeyShare) ([]byte, error) {
	plain, err := share.MarshalBinary()
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	return p.kr.Encrypt(shareRecord(userID, p.id), plain)
}
