package workspace

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave/sim"
	"github.com/coterie-mpc/coterie/internal/atomicfile"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/cosigner"
	"github.com/coterie-mpc/coterie/workspace/pki"
	"github.com/coterie-mpc/coterie/workspace/server"
	"github.com/coterie-mpc/coterie/workspace/store"
	"google.golang.org/protobuf/proto"
)

// Files of the data directory.
const (
	FileDB          = "workspace.db"
	FileCA          = "ca.pem"
	FileCAKey       = "ca-key.sealed"
	FileAdmin       = "admin.pem"
	FileAddress     = "address"
	FilePlatformKey = "sim-platform.key"
	DirCosigners    = "cosigners"
)

// DefaultVaults are the vault accounts of a new default workspace; their
// IDs are 0, 1 and 2.
var DefaultVaults = []string{"Default", "Treasury", "Operations"}

// caKeyAD binds the sealed CA key to its purpose.
var caKeyAD = []byte("coterie/workspace/ca-key/v1")

// Config configures a Workspace.
type Config struct {
	// DataDir is the workspace's directory; created 0700 when missing.
	DataDir string
	// Listen is the gRPC listen address, host:port; port 0 picks one.
	Listen string
	// Advertise is the host:port that pairing tokens carry. Empty means the
	// listen address, with an unspecified host replaced by 127.0.0.1.
	Advertise string
	// CloudCosigners is the number of cloud co-signers: 1 or 2. It is part
	// of the workspace's setup, fixed at its first start: 0 takes the
	// stored value (2 on the first start), and another value than the
	// stored one is ErrSetupMismatch.
	CloudCosigners int
	// Quorum is the number of parties that sign, the node included: 2 to
	// CloudCosigners+1. Like CloudCosigners, it is fixed at the first start;
	// 0 takes the stored value (all parties on the first start).
	Quorum int
	// RequestTTL is the default lifetime of a request.
	RequestTTL time.Duration
	// TokenTTL is the default lifetime of a pairing token.
	TokenTTL time.Duration
	// SessionTimeout bounds one MPC relay session.
	SessionTimeout time.Duration
	// Engine configures the cloud co-signers' MPC engine.
	Engine mpc.Config
	Clock  clock.Clock
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults: listen on 127.0.0.1:7443, the
// stored MPC setup (two cloud co-signers signing 3-of-3 on the first
// start), requests open 24 hours, tokens valid 24 hours. DataDir must still
// be set.
func DefaultConfig() Config {
	cs := cosigner.DefaultConfig()
	return Config{
		Listen:         "127.0.0.1:7443",
		RequestTTL:     24 * time.Hour,
		TokenTTL:       24 * time.Hour,
		SessionTimeout: cs.SessionTimeout,
		Engine:         cs.Engine,
		Clock:          clock.Real(),
	}
}

// Validate reports the problems that Open would not find later; the parts
// validate the rest.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("workspace: DataDir is empty"))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("workspace: Listen %q is not host:port", c.Listen))
	}
	if c.Advertise != "" {
		if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
			errs = append(errs, fmt.Errorf("workspace: Advertise %q is not host:port", c.Advertise))
		}
	}
	if c.Clock == nil {
		errs = append(errs, errors.New("workspace: Clock is nil"))
	}
	if c.CloudCosigners < 0 || c.CloudCosigners > 2 {
		errs = append(errs, fmt.Errorf("workspace: CloudCosigners must be 1 or 2 (0: the stored setup), got %d", c.CloudCosigners))
	}
	maxQuorum := 3
	if c.CloudCosigners > 0 {
		maxQuorum = c.CloudCosigners + 1
	}
	if c.Quorum != 0 && (c.Quorum < 2 || c.Quorum > maxQuorum) {
		errs = append(errs, fmt.Errorf("workspace: Quorum must be 2 to %d (0: the stored setup), got %d", maxQuorum, c.Quorum))
	}
	return errors.Join(errs...)
}

// Workspace is a running workspace simulator.
type Workspace struct {
	cfg   Config
	setup *protocol.WsSetup
	log   *slog.Logger
	store *store.Store
	srv   *server.Server
	lis   net.Listener
	addr  string
	done  chan error
}

// Open prepares the data directory (creating the CA, the admin credential,
// the workspace's setup and the cloud co-signers on first use), opens the
// store and binds the listener. Start serves. Errors include
// ErrSetupMismatch.
func Open(cfg Config) (w *Workspace, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	now := cfg.Clock.Now()
	ca, err := loadOrCreateCA(cfg, log, now)
	if err != nil {
		return nil, err
	}
	adminHash, err := loadOrCreateAdmin(cfg.DataDir, ca, now)
	if err != nil {
		return nil, err
	}
	tokenKey, err := ca.DeriveKey("pairing-token")
	if err != nil {
		return nil, err
	}

	scfg := store.DefaultConfig()
	scfg.Path = filepath.Join(cfg.DataDir, FileDB)
	scfg.Clock = cfg.Clock
	scfg.Logger = log
	scfg.RequestTTL = cfg.RequestTTL
	st, err := store.New(scfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	setup, err := openSetup(cfg, st)
	if err != nil {
		return nil, err
	}
	if _, err := st.EnsureWorkspace(setup.GetWorkspaceId(), "Default workspace", DefaultVaults); err != nil {
		return nil, err
	}

	ccfg := cosigner.DefaultConfig()
	ccfg.Dir = filepath.Join(cfg.DataDir, DirCosigners)
	ccfg.PlatformKeyFile = filepath.Join(cfg.DataDir, FilePlatformKey)
	ccfg.Count = int(setup.GetCloudCosigners())
	ccfg.Quorum = int(setup.GetQuorum())
	ccfg.Store = st
	ccfg.Engine = cfg.Engine
	ccfg.SessionTimeout = cfg.SessionTimeout
	ccfg.Logger = log
	cos, err := cosigner.New(ccfg)
	if err != nil {
		return nil, err
	}

	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("workspace: listen: %w", err)
	}
	defer func() {
		if err != nil {
			lis.Close()
		}
	}()
	addr := advertised(cfg.Advertise, lis.Addr().String())
	cert, err := ca.IssueServer(serverHosts(lis.Addr().String(), addr), now, 365*24*time.Hour)
	if err != nil {
		return nil, err
	}

	srvCfg := server.DefaultConfig()
	srvCfg.Store = st
	srvCfg.Cosigners = cos
	srvCfg.CA = ca
	srvCfg.ServerCert = cert
	srvCfg.TokenKey = tokenKey
	srvCfg.Address = addr
	srvCfg.WorkspaceID = setup.GetWorkspaceId()
	srvCfg.AdminCerts = [][32]byte{adminHash}
	srvCfg.Clock = cfg.Clock
	srvCfg.Logger = log
	srvCfg.TokenTTL = cfg.TokenTTL
	srv, err := server.New(srvCfg)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(cfg.DataDir, FileAddress), []byte(addr+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("workspace: write address: %w", err)
	}
	return &Workspace{cfg: cfg, setup: setup, log: log, store: st, srv: srv, lis: lis, addr: addr}, nil
}

// advertised returns the address to put in tokens.
func advertised(advertise, bound string) string {
	if advertise != "" {
		return advertise
	}
	host, port, _ := net.SplitHostPort(bound)
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func serverHosts(addrs ...string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" {
			if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
				hosts = append(hosts, h)
			}
		}
	}
	return hosts
}

// Start serves in the background. Wait returns when serving stops.
func (w *Workspace) Start() {
	w.done = make(chan error, 1)
	go func() { w.done <- w.srv.Serve(w.lis) }()
	w.log.Info("workspace serving", "workspace", w.setup.GetWorkspaceId(), "address", w.addr, "data_dir", w.cfg.DataDir,
		"cloud_cosigners", w.setup.GetCloudCosigners(), "quorum", w.setup.GetQuorum())
}

// ID returns the workspace's ID, unique across workspaces (or "default"
// for a directory created before IDs were unique).
func (w *Workspace) ID() string { return w.setup.GetWorkspaceId() }

// Setup returns the workspace's setup, as stored at its first start.
func (w *Workspace) Setup() *protocol.WsSetup { return proto.Clone(w.setup).(*protocol.WsSetup) }

// Wait blocks until serving stops and returns its error.
func (w *Workspace) Wait() error { return <-w.done }

// Addr returns the address that clients dial and that tokens carry.
func (w *Workspace) Addr() string { return w.addr }

// Store returns the workspace's store.
func (w *Workspace) Store() *store.Store { return w.store }

// Sweep expires due requests and flushes last-seen times now.
func (w *Workspace) Sweep() { w.srv.Sweep() }

// Close stops serving (giving calls in flight up to five seconds) and
// closes the store.
func (w *Workspace) Close() error {
	w.srv.Stop(5 * time.Second)
	if w.done == nil {
		w.lis.Close()
	}
	return w.store.Close()
}

func loadOrCreateCA(cfg Config, log *slog.Logger, now time.Time) (*pki.CA, error) {
	certPath := filepath.Join(cfg.DataDir, FileCA)
	keyPath := filepath.Join(cfg.DataDir, FileCAKey)
	certPEM, err := os.ReadFile(certPath)
	first := errors.Is(err, os.ErrNotExist)
	if err != nil && !first {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	simCfg := sim.DefaultConfig()
	simCfg.DataDir = cfg.DataDir
	simCfg.CreateRoot = first
	simCfg.PlatformKeyFile = filepath.Join(cfg.DataDir, FilePlatformKey)
	simCfg.Measurement = caMeasurement
	simCfg.Logger = log
	sealer, err := sim.New(simCfg)
	if err != nil {
		return nil, fmt.Errorf("workspace: open enclave: %w", err)
	}
	if !first {
		sealed, err := os.ReadFile(keyPath)
		if err != nil {
			return nil, fmt.Errorf("workspace: %w", err)
		}
		keyPEM, err := sealer.Unseal(sealed, caKeyAD)
		if err != nil {
			return nil, fmt.Errorf("workspace: unseal CA key: %w", err)
		}
		defer clear(keyPEM)
		return pki.LoadCA(certPEM, keyPEM)
	}
	ca, err := pki.NewCA("coterie workspace CA", now, 20*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	defer clear(keyPEM)
	sealed, err := sealer.Seal(keyPEM, caKeyAD)
	if err != nil {
		return nil, fmt.Errorf("workspace: seal CA key: %w", err)
	}
	// The key first, so that a crash leaves no certificate without its key.
	if err := atomicfile.Write(keyPath, sealed, 0o600); err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	if err := atomicfile.Write(certPath, ca.CertPEM(), 0o644); err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	return ca, nil
}

var caMeasurement = func() []byte { m := sha256.Sum256([]byte("coterie workspace v1")); return m[:] }()

func loadOrCreateAdmin(dir string, ca *pki.CA, now time.Time) ([32]byte, error) {
	path := filepath.Join(dir, FileAdmin)
	b, err := os.ReadFile(path)
	if err == nil {
		kp, err := pki.ParseKeyPair(b)
		if err != nil {
			return [32]byte{}, fmt.Errorf("workspace: %s: %w", path, err)
		}
		return sha256.Sum256(kp.Leaf.Raw), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return [32]byte{}, fmt.Errorf("workspace: %w", err)
	}
	kp, err := ca.NewClient("admin", pki.UnitAdmin, now, 20*365*24*time.Hour)
	if err != nil {
		return [32]byte{}, err
	}
	b, err = pki.EncodeKeyPair(kp)
	if err != nil {
		return [32]byte{}, err
	}
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return [32]byte{}, fmt.Errorf("workspace: %w", err)
	}
	return sha256.Sum256(kp.Certificate[0]), nil
}
