package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/backend"
	"github.com/coterie-mpc/coterie/enclave/gcpcs"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/enclave/store"
	"github.com/coterie-mpc/coterie/internal/atomicfile"
	"github.com/coterie-mpc/coterie/internal/logthrottle"
	"github.com/coterie-mpc/coterie/node/console"
	"github.com/coterie-mpc/coterie/protocol/mpc"
)

// Files of the data directory that the node package owns.
const (
	// AdminTokenFile holds the admin API's bearer token, mode 0600.
	AdminTokenFile = "admin.token"
	// AdminAddressFile holds the admin API's address once it listens.
	AdminAddressFile = "admin.address"
)

// callbackKeyBits is the size of the cluster's RSA callback key.
const callbackKeyBits = 2048

// Node is one running Coterie node: its enclave-sealed store, its raft
// cluster member, the admin API and the actors that serve its API users.
// Its methods are safe for concurrent use.
type Node struct {
	cfg   Config
	clock clock.Clock
	// base is the configured logger; log, the node's own, is base with
	// component=node, and each subsystem gets base with its own component.
	base *slog.Logger
	log  *slog.Logger

	store    *store.Store
	enclave  enclave.Enclave
	identity ed25519.PublicKey
	// identityKey is the identity's private key: the cluster's TLS key. It
	// is cleared on Close.
	identityKey ed25519.PrivateKey
	kr          *keyring.Keyring
	cluster     *TimedCluster
	engine      *mpc.Engine
	metrics     *nodeMetrics
	admin       *adminServer
	// recorder keeps the status console's rolling windows; Start feeds
	// it once the node serves.
	recorder *console.Recorder

	// phase is a Phase: where the node is between New and Close.
	phase atomic.Int32
	// halted says why signing stopped (stopSigning), nil while it runs.
	halted  atomic.Pointer[string]
	drainMu sync.Mutex    // one planned departure at a time
	drained chan struct{} // closed when a Drain or Leave has run
	pairMu  sync.Mutex    // one pairing at a time
	// refreshMu lets one key refresh run at a time on this node.
	refreshMu sync.Mutex
	addMu     sync.Mutex // one addUser at a time
	closing   sync.Once
	closeFn   []func() error // run in reverse order by Close
	// saver saves the lasting files after each change of the sealed
	// store (the storage section); nil without one.
	saver atomic.Pointer[fileSaver]

	mu          sync.Mutex
	callbackKey *rsa.PrivateKey
	users       map[string]*User // by record id
	serve       userServer
}

// New opens a node: it initialises the data directory on first start,
// unseals the store with the enclave, starts raft and binds the admin API
// (which answers 503 on /v1/health until Start has finished). On error
// everything New opened is closed again.
func New(cfg Config) (_ *Node, err error) {
	n, err := open(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			n.runClosers()
		}
	}()
	if err := n.prepareDataDir(); err != nil {
		return nil, err
	}
	keep, err := n.keeper()
	if err != nil {
		return nil, err
	}
	if keep != nil {
		if err := n.restoreFiles(keep); err != nil {
			return nil, err
		}
	}
	if err := n.openStore(); err != nil {
		return nil, err
	}
	if keep != nil {
		// Closed after the cluster, whose apply changes the store, and
		// before the store.
		saver := newFileSaver(func(ctx context.Context) error { return n.saveFiles(ctx, keep) }, n.clock, n.log)
		n.closeFn = append(n.closeFn, saver.close)
		n.saver.Store(saver)
		// Kept before a join spends the token, and again once New is done.
		if err := n.saveLasting(); err != nil {
			return nil, err
		}
	}
	if err := n.joinIfAsked(); err != nil {
		return nil, err
	}
	eng, err := mpc.New(mpc.Config{MaxPayloadBytes: mpc.DefaultConfig().MaxPayloadBytes, Logger: n.componentLogger("mpc")})
	if err != nil {
		return nil, err
	}
	n.engine = eng
	n.metrics = newNodeMetrics(n.userCount, n.readyGauge)
	if s := n.saver.Load(); s != nil {
		n.metrics.watchLasting(s.stale)
	}
	if err := n.openCluster(); err != nil {
		return nil, err
	}
	if n.recorder, err = n.newRecorder(); err != nil {
		return nil, err
	}
	token, err := ensureAdminToken(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if n.admin, err = newAdminServer(n, cfg.Admin, token); err != nil {
		return nil, err
	}
	n.closeFn = append(n.closeFn, n.admin.close)
	if err := atomicfile.Write(filepath.Join(cfg.DataDir, AdminAddressFile), []byte(n.admin.addr()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("node: write %s: %w", AdminAddressFile, err)
	}
	if err := n.saveLasting(); err != nil {
		return nil, err
	}
	n.log.Info("node opened", "node", cfg.NodeID, "raft", n.cluster.Addr(), "admin", n.admin.url(),
		"identity", hex.EncodeToString(n.identity))
	return n, nil
}

// open validates cfg and returns a Node with its clock and loggers, and
// nothing else open yet.
func open(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, clock: cfg.Clock, users: map[string]*User{}, drained: make(chan struct{})}
	if n.clock == nil {
		n.clock = clock.Real()
	}
	configured, closer, err := cfg.logger()
	if err != nil {
		return nil, err
	}
	n.closeFn = append(n.closeFn, closer.Close)
	// A part that fails in a loop (a pool refilling against a workspace
	// that is down) writes the same record over and over: pass a few per
	// window and a count of the rest.
	tcfg := logthrottle.DefaultConfig()
	tcfg.Clock = n.clock
	throttle, err := logthrottle.New(configured.Handler(), tcfg)
	if err != nil {
		_ = closer.Close()
		return nil, err
	}
	n.closeFn = append(n.closeFn, func() error { throttle.Flush(); return nil })
	n.base = slog.New(throttle)
	n.log = n.componentLogger("node")
	return n, nil
}

// Join joins the cluster a join token names, for `coterie node join`: it
// creates the node's sealed store on first use, runs the join handshake
// with the member the token names, seals the cluster keyring and member
// table it gets, and closes everything. `node run` then starts the member,
// which catches up and becomes a voter. A node that has joined or has raft
// state gets ErrJoined; a join that fails leaves nothing behind that stops
// it from being run again.
func Join(ctx context.Context, cfg Config, token string) (cluster.JoinResult, error) {
	n, err := open(cfg)
	if err != nil {
		return cluster.JoinResult{}, err
	}
	defer n.runClosers()
	if err := n.prepareDataDir(); err != nil {
		return cluster.JoinResult{}, err
	}
	if err := n.openStore(); err != nil {
		return cluster.JoinResult{}, err
	}
	if done, err := n.hasJoined(); err != nil || done {
		if err == nil {
			err = fmt.Errorf("%w: %s", ErrJoined, cfg.DataDir)
		}
		return cluster.JoinResult{}, err
	}
	return n.join(ctx, token)
}

// prepareDataDir creates the data directory, or makes an existing one
// private: everything in it is the node's alone (directories 0700, files
// 0600), and an operator's mkdir gives 0755.
func (n *Node) prepareDataDir() error {
	dir := n.cfg.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("node: data directory: %w", err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("node: data directory: %w", err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("node: data directory: %w", err)
		}
		n.log.Info("data directory made private", "data_dir", dir, "was", perm.String(), "now", fs.FileMode(0o700).String())
	}
	return nil
}

// openStore opens the sealed store, creating it on first start, and
// unseals the identity and keyring.
func (n *Node) openStore() error {
	bcfg := n.backendConfig()
	kind, policy := bcfg.Kind, bcfg.KeyPolicy
	scfg := store.DefaultConfig()
	scfg.Dir, scfg.Logger = n.cfg.DataDir, n.componentLogger("store")

	exists, err := store.Exists(n.cfg.DataDir)
	if err != nil {
		return err
	}
	if !exists {
		if _, err := os.Stat(filepath.Join(n.cfg.DataDir, "raft")); err == nil {
			return fmt.Errorf("node: %s has raft state but no node store: refusing to create a new identity over it", n.cfg.DataDir)
		}
		if _, _, err := Initialize(bcfg, scfg); err != nil {
			return err
		}
		n.log.Info("node initialized", "data_dir", n.cfg.DataDir, "enclave", kind, "key_policy", policy)
	}
	st, err := store.Open(scfg)
	if err != nil {
		return err
	}
	n.store = st
	n.closeFn = append(n.closeFn, st.Close)
	info := st.Info()
	if info.Kind != kind || info.KeyPolicy != policy {
		return fmt.Errorf("%w: the data directory was sealed by enclave %s (key policy %s), the config says %s (%s)",
			ErrInvalidConfig, info.Kind, info.KeyPolicy, kind, policy)
	}
	u, err := Unseal(st, bcfg)
	if err != nil {
		return err
	}
	n.enclave, n.identityKey, n.kr = u.Enclave, u.Identity, u.Keyring
	n.identity = u.Identity.Public().(ed25519.PublicKey)
	n.closeFn = append(n.closeFn, func() error { clear(n.identityKey); return nil })
	// A store restored from elsewhere (storage.parent) may be another
	// member's: its identity must be the one the member table has for this
	// node_id.
	known, ok, err := n.knownMembers()
	if err != nil {
		return err
	}
	for _, m := range known.Members {
		if ok && m.ID == n.cfg.NodeID && !m.IdentityKey.Equal(n.identity) {
			return fmt.Errorf("%w: the sealed store in %s holds the identity of another member than %s (%x, the member table has %x)",
				ErrInvalidConfig, n.cfg.DataDir, n.cfg.NodeID, n.identity[:8], m.IdentityKey[:8])
		}
	}
	return nil
}

// backendConfig is the enclave backend the config describes.
func (n *Node) backendConfig() backend.Config {
	kind, _ := enclave.ParseKind(n.cfg.Enclave.Kind)
	policy, _ := enclave.ParseKeyPolicy(n.cfg.Enclave.KeyPolicy)
	bcfg := backend.DefaultConfig()
	bcfg.Kind, bcfg.KeyPolicy, bcfg.DataDir = kind, policy, n.cfg.DataDir
	bcfg.Production = n.cfg.mode() == ModeProduction
	bcfg.AllowDebug = n.cfg.Enclave.AllowDebug
	if n.cfg.Enclave.SimPlatformKey != "" {
		bcfg.SimPlatformKeyFile = n.cfg.Enclave.SimPlatformKey
	}
	bcfg.SimTrustedPlatforms, _ = n.cfg.Enclave.trustedPlatforms() // Validate checked them
	if nw := n.cfg.Network.net(); nw.Egress != nil {
		// The Confidential Space issuer's keys come through the egress
		// proxy too.
		cs := gcpcs.DefaultConfig()
		cs.HTTPClient = &http.Client{Timeout: cs.HTTPClient.Timeout, Transport: &http.Transport{DialContext: nw.DialContext}}
		bcfg.ConfidentialSpace = &cs
	}
	bcfg.Nitro = n.cfg.Enclave.Nitro.backend()
	bcfg.ConfidentialSpaceSealing = n.cfg.Enclave.ConfidentialSpace.sealing()
	bcfg.Logger = n.componentLogger("enclave")
	return bcfg
}

// Unsealed is what a node's sealed store gives it with its enclave.
type Unsealed struct {
	// Enclave is the open backend that unsealed the store.
	Enclave enclave.Enclave
	// Identity is the node's identity key; the caller clears it when done.
	Identity ed25519.PrivateKey
	Keyring  *keyring.Keyring
}

// Unseal opens a node store's sealed records with the enclave that bcfg
// describes: it unseals the identity key, checks it against the store's
// public key, and unseals the keyring. It returns the identity's public key
// and the keyring. When the sim enclave finds the records sealed by another
// enclave, the error names the platform key file it tried: for the sim,
// that file is the machine, and a node made with another one (a demo's,
// say) looks like another machine's.
func Unseal(st *store.Store, bcfg backend.Config) (Unsealed, error) {
	enc, err := backend.New(bcfg)
	if err != nil {
		return Unsealed{}, err
	}
	explain := func(err error) error {
		if bcfg.Kind == enclave.KindSim && st.Info().Kind == enclave.KindSim && errors.Is(err, enclave.ErrForeignEnclave) {
			return fmt.Errorf("%w; the sim enclave unsealed with platform key %s: a node made with another platform "+
				"key file needs that file (--sim-platform-key, or enclave.sim_platform_key in the config)", err, bcfg.SimPlatformKeyFile)
		}
		return err
	}
	id, err := st.Identity(enc)
	if err != nil {
		return Unsealed{}, explain(err)
	}
	if !id.Public().(ed25519.PublicKey).Equal(st.Info().Identity) {
		clear(id)
		return Unsealed{}, errors.New("node: the sealed identity key does not match its public key")
	}
	kr, err := st.Keyring(enc)
	if err != nil {
		clear(id)
		return Unsealed{}, explain(err)
	}
	return Unsealed{Enclave: enc, Identity: id, Keyring: kr}, nil
}

// Initialize creates the sealed store of a new node: an Ed25519 identity
// key and a fresh keyring, both sealed by the enclave bcfg describes. It
// returns the identity's public key and the keyring, for display.
func Initialize(bcfg backend.Config, scfg store.Config) (ed25519.PublicKey, *keyring.Keyring, error) {
	bcfg.Initialize = true
	enc, err := backend.New(bcfg)
	if err != nil {
		return nil, nil, err
	}
	pub, identity, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("node: generate identity: %w", err)
	}
	defer clear(identity)
	kr, err := keyring.Generate()
	if err != nil {
		return nil, nil, err
	}
	if err := store.Create(scfg, enc, identity, kr); err != nil {
		return nil, nil, err
	}
	return pub, kr, nil
}

func (n *Node) openCluster() error {
	ccfg := cluster.DefaultConfig()
	ccfg.NodeID = n.cfg.NodeID
	ccfg.DataDir = n.cfg.DataDir
	ccfg.BindAddr = n.cfg.Raft.Bind
	ccfg.AdvertiseAddr = n.cfg.Raft.Advertise
	ccfg.Network = n.cfg.Network.net()
	ccfg.Identity, ccfg.Attester, ccfg.Keyring = n.identityKey, n.enclave, n.kr
	known, _, err := n.knownMembers()
	if err != nil {
		return err
	}
	ccfg.KnownMembers, ccfg.SaveMembers = known, n.saveMembers
	ccfg.SaveKeyring = n.saveKeyring
	// A node that joined a cluster never starts one of its own.
	ccfg.Bootstrap = n.cfg.Raft.Bootstrap && !joinedElsewhere(known, n.cfg.NodeID) && n.cfg.Cluster.JoinTokenFile == ""
	ccfg.OwnerTimeout = n.cfg.OwnerTimeout
	ccfg.Clock = n.clock
	ccfg.Logger = n.componentLogger("cluster")
	c, err := cluster.New(ccfg)
	if err != nil {
		return err
	}
	n.cluster = &TimedCluster{Cluster: c, hist: n.metrics.raftApply}
	n.closeFn = append(n.closeFn, c.Close)
	n.startLeaderLoop(resealInterval, n.resealStep)
	if n.cfg.Refresh.Interval > 0 || len(n.cfg.Refresh.Users) > 0 {
		failed := map[string]time.Time{}
		n.startLeaderLoop(refreshCheck, func(ctx context.Context) { n.refreshStep(ctx, failed) })
	}
	n.startLeaderLoop(auditCheckInterval, n.auditStep)
	return nil
}

// Start waits for a raft leader, makes sure the cluster's callback key
// exists (the leader creates it once), opens every paired API user and
// starts serving them. It returns when the node is ready, or ctx ends.
func (n *Node) Start(ctx context.Context) error {
	leader, err := n.cluster.WaitLeader(ctx)
	if err != nil {
		return fmt.Errorf("node: waiting for a raft leader: %w", err)
	}
	n.log.Info("raft leader known", "leader", leader)
	n.setPhase(PhaseCatchingUp)
	// Read no user or key before the replica caught up: a restarted
	// leader replays its log only after its election, a follower learns
	// from the leader, and a node that joined may need to become a voter.
	if err := n.joinCluster(ctx); err != nil {
		return err
	}
	// No node asks another handler than the cluster's, or approves by
	// itself while the cluster has one (I5). A node that disagrees starts
	// with its signing halted, so that its admin API can still record its
	// handler as the cluster's (`node cluster callback --set`).
	mismatch := n.ensureCallbackHandler(ctx)
	if mismatch != nil && !errors.Is(mismatch, ErrCallbackMismatch) {
		return mismatch
	}
	key, err := n.ensureCallbackKey(ctx)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.callbackKey = key
	n.mu.Unlock()
	srv, err := n.newUserServer()
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.serve = srv
	n.mu.Unlock()
	if mismatch != nil {
		srv.halt(mismatch.Error())
	}
	n.closeFn = append(n.closeFn, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		return srv.stop(ctx)
	})
	// Users paired through another node arrive as API-user records: serve
	// them too. Subscribe before the first scan, so none falls between.
	events, unsub := n.cluster.Subscribe(256)
	if err := n.serveNewUsers(); err != nil {
		unsub()
		return err
	}
	done := make(chan struct{})
	go n.watchUsers(events, done)
	stopRecording := n.startRecording()
	n.closeFn = append(n.closeFn, func() error { unsub(); <-done; return nil })
	n.closeFn = append(n.closeFn, func() error { stopRecording(); return nil })
	if !n.phase.CompareAndSwap(int32(PhaseCatchingUp), int32(PhaseServing)) {
		return fmt.Errorf("%w: the node is %s", ErrNotReady, n.Phase())
	}
	n.log.Info("node ready", "node", n.cfg.NodeID, "users", n.userCount())
	return nil
}

// serveNewUsers starts serving every API user of the cluster this node
// does not serve yet.
func (n *Node) serveNewUsers() error {
	for _, r := range n.cluster.APIUsers() {
		n.mu.Lock()
		_, known := n.users[r.ID]
		n.mu.Unlock()
		if known {
			continue
		}
		u, err := openUser(n.kr, n.cluster, r)
		if err != nil {
			return err
		}
		if err := n.addUser(u); err != nil {
			return err
		}
	}
	return nil
}

// watchUsers serves the users that other nodes pair, until events closes.
// Events are hints that may be dropped, so every one leads to a full scan.
func (n *Node) watchUsers(events <-chan cluster.Event, done chan<- struct{}) {
	defer close(done)
	for ev := range events {
		if ev.Kind == cluster.EventCallbackSet || ev.Kind == cluster.EventRestored {
			// The cluster's handler changed: a node whose config no
			// longer names it stops signing until it is fixed.
			if _, err := n.checkCallback(); err != nil {
				n.mu.Lock()
				srv := n.serve
				n.mu.Unlock()
				srv.halt(err.Error())
			}
		}
		if ev.Kind != cluster.EventAPIUserAdded && ev.Kind != cluster.EventKeyRecordAdded && ev.Kind != cluster.EventRestored {
			continue
		}
		if err := n.serveNewUsers(); err != nil {
			n.log.Warn("cannot serve a newly paired API user yet", "err", err)
		}
	}
}

// ensureCallbackKey returns the cluster's callback key, creating it when
// this node leads and nobody has yet. A follower waits for the record.
func (n *Node) ensureCallbackKey(ctx context.Context) (*rsa.PrivateKey, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if r, ok := n.cluster.KeyRecord(callbackKeyRecord); ok {
			return openCallbackKey(n.kr, r)
		}
		if n.cluster.IsLeader() {
			key, err := rsa.GenerateKey(rand.Reader, callbackKeyBits)
			if err != nil {
				return nil, fmt.Errorf("node: generate callback key: %w", err)
			}
			rec, err := callbackKeyRecordFor(n.kr, key)
			if err != nil {
				return nil, err
			}
			err = n.cluster.AddKeyRecord(ctx, rec)
			switch {
			case err == nil:
				n.log.Info("cluster callback key created")
				return key, nil
			case errors.Is(err, cluster.ErrRecordExists), errors.Is(err, cluster.ErrUncertain):
				continue // read what committed
			default:
				return nil, fmt.Errorf("node: record callback key: %w", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrNoCallbackKey, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Close stops the node in the reverse order of starting: the actors, the
// admin API, raft, the store and the log file. Calls after the first
// return nil.
func (n *Node) Close() error {
	var err error
	n.closing.Do(func() {
		n.setPhase(PhaseStopped)
		err = n.runClosers()
	})
	return err
}

func (n *Node) runClosers() error {
	var errs []error
	for i := len(n.closeFn) - 1; i >= 0; i-- {
		if err := n.closeFn[i](); err != nil {
			errs = append(errs, err)
		}
	}
	n.closeFn = nil
	return errors.Join(errs...)
}

// Ready reports whether the node is serving: Start has finished, and no
// drain or Close has begun.
func (n *Node) Ready() bool { return n.Phase() == PhaseServing }

// AdminAddr returns the address the admin API listens on.
func (n *Node) AdminAddr() string { return n.admin.addr() }

// AdminURL returns the admin API's base URL: https when it serves TLS.
func (n *Node) AdminURL() string { return n.admin.url() }

// Cluster returns the node's cluster member.
func (n *Node) Cluster() *TimedCluster { return n.cluster }

// Logger returns the node's logger.
func (n *Node) Logger() *slog.Logger { return n.log }

// componentLogger returns the logger of one part of the node: the
// configured logger with component=name. It is derived from the configured
// logger, never from another component's, so a record names one component.
func (n *Node) componentLogger(name string) *slog.Logger {
	return n.base.With("component", name)
}

// CallbackPublicKey returns the cluster's callback public key, or nil
// before Start has found it.
func (n *Node) CallbackPublicKey() *rsa.PublicKey {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.callbackKey == nil {
		return nil
	}
	return &n.callbackKey.PublicKey
}

// Users returns the public part of every paired API user, sorted by
// workspace and id.
func (n *Node) Users() []UserInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]UserInfo, 0, len(n.users))
	for _, u := range n.users {
		out = append(out, u.Info)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].WorkspaceID != out[j].WorkspaceID {
			return out[i].WorkspaceID < out[j].WorkspaceID
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (n *Node) userCount() float64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return float64(len(n.users))
}

func (n *Node) readyGauge() float64 {
	if n.Ready() {
		return 1
	}
	return 0
}

// addUser hands a user to the actors and remembers it. Pair and the
// watch of users paired elsewhere both add a new user: one at a time, so
// the second finds the first's.
func (n *Node) addUser(u *User) error {
	n.addMu.Lock()
	defer n.addMu.Unlock()
	n.mu.Lock()
	srv := n.serve
	_, dup := n.users[u.RecordID]
	n.mu.Unlock()
	if dup {
		return nil
	}
	if err := srv.add(u); err != nil {
		return err
	}
	n.mu.Lock()
	n.users[u.RecordID] = u
	n.mu.Unlock()
	n.log.Info("serving API user", "user", u.Info.ID, "workspace", u.Info.WorkspaceID, "role", u.Info.Role)
	return nil
}

// ensureAdminToken returns the admin token, creating it on first start.
func ensureAdminToken(dir string) (string, error) {
	path := filepath.Join(dir, AdminTokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		tok := string(trimSpace(b))
		if len(tok) < 32 {
			return "", fmt.Errorf("node: %s is too short to be an admin token", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("node: admin token: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw)
	if err := atomicfile.Write(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("node: write %s: %w", path, err)
	}
	return tok, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
