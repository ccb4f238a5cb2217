package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/coterie-mpc/coterie/protocol"
)

// Cluster is one node's view of the raft cluster: it proposes commands
// (forwarding them to the leader when it is a follower), answers queries
// from its local FSM, serves the proposals other nodes forward to it, and,
// while it leads, releases silent owners.
//
// All methods are safe for concurrent use.
type Cluster struct {
	cfg   Config
	log   *slog.Logger
	fsm   *FSM
	raft  *raft.Raft
	trans Transport
	// logs is raft's log store, read by LogEntries.
	logs raft.LogStore
	// closers run after raft shuts down (the bolt store).
	closers []func() error

	watch *ownerWatch
	// progress holds the followers' reports, on the leader.
	progress progressTable

	// stop closes, and ctx ends, when Close starts.
	stop      chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	forwards  chan struct{} // semaphore for forwarded applies
	nudges    chan struct{}
	// adoptNudge wakes reportAdoption after takeInCopies.
	adoptNudge chan struct{}
	// sealed is how far the keyring sealed on disk reaches (see
	// keyring_rotate.go).
	sealed sealMark
	// reseal is where ResealBatch goes on from (keyring_reseal.go).
	reseal resealCursor

	// restoring is held by Restore while it merges and installs a
	// snapshot; handle holds it shared to append a command, so that none
	// enters the log meanwhile.
	restoring sync.RWMutex

	// known is the member table Member falls back on (see Member);
	// unsubMembers ends trackMembers' subscription.
	known        atomic.Pointer[KnownMembers]
	unsubMembers func()

	// adders orders this node's presignature Adds per key; nextOrigin (under
	// the key's adder lock) is the next origin number this node may use.
	addersMu   sync.Mutex
	adders     map[string]*sync.Mutex
	nextOrigin map[string]uint64
}

var _ Reader = (*Cluster)(nil)

// New starts a node: it opens raft's storage and transport, bootstraps a
// new cluster if asked to and there is no state yet, and starts raft. It
// does not wait for a leader; see WaitLeader.
func New(cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg:      cfg,
		log:      cfg.Logger.With("node", cfg.NodeID),
		fsm:      NewFSM(),
		stop:     make(chan struct{}),
		forwards: make(chan struct{}, cfg.MaxForwardsInFlight),
		nudges:   make(chan struct{}, 1),

		adders:     map[string]*sync.Mutex{},
		nextOrigin: map[string]uint64{},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.adoptNudge = make(chan struct{}, 1)
	known := cfg.KnownMembers
	c.known.Store(&known)
	// Subscribed before raft starts, so no member change is missed.
	memberEvents, unsub := c.fsm.Subscribe(64)
	c.unsubMembers = unsub
	c.closers = append(c.closers, func() error { unsub(); return nil })
	ok := false
	defer func() {
		if !ok {
			c.cancel()
			_ = c.runClosers()
		}
	}()
	st := cfg.Storage
	if st == nil {
		var err error
		if st, err = c.openStorage(); err != nil {
			return nil, err
		}
	}
	c.logs = st.Logs
	// Validate has made sure that without a Transport there is an
	// identity: a node's network transport is always mutual TLS, its peers
	// authorised by the member table.
	c.trans = cfg.Transport
	var tlsTrans *tlsTransport
	if c.trans == nil {
		tcfg := cfg
		if tcfg.Members == nil {
			tcfg.Members = c
		}
		if tcfg.Join == nil && cfg.Attester != nil && cfg.Keyring != nil {
			tcfg.Join = c
		}
		t, err := newTLSTransport(tcfg)
		if err != nil {
			return nil, err
		}
		c.trans, tlsTrans = t, t
	}
	c.closers = append(c.closers, c.trans.Close)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.Logger = newHCLog(cfg.Logger, "raft")
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("cluster: raft config: %w", err)
	}

	if cfg.Bootstrap {
		has, err := raft.HasExistingState(st.Logs, st.Stable, st.Snapshots)
		if err != nil {
			return nil, fmt.Errorf("cluster: read raft state: %w", err)
		}
		if !has {
			servers := []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: c.trans.LocalAddr()}}
			for _, p := range cfg.Peers {
				servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
			}
			if err := raft.BootstrapCluster(rc, st.Logs, st.Stable, st.Snapshots, c.trans, raft.Configuration{Servers: servers}); err != nil {
				return nil, fmt.Errorf("cluster: bootstrap: %w", err)
			}
			c.log.Info("cluster bootstrapped", "voters", len(servers))
		}
	}

	if cfg.SaveKeyring != nil {
		// Before raft starts, so that no rotation it applies is missed.
		c.sealed.upTo = heldUpTo(cfg.Keyring)
		c.fsm.onRotation = c.takeInCopies
	}
	r, err := raft.NewRaft(rc, c.fsm, st.Logs, st.Stable, st.Snapshots, c.trans)
	if err != nil {
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	c.raft = r
	if tlsTrans != nil {
		tlsTrans.bindRaft(r)
	}
	c.watch = newOwnerWatch(c)
	if cfg.SaveKeyring != nil {
		c.wg.Add(1)
		go c.reportAdoption()
	}
	if g, ok := c.trans.(goneReporter); ok {
		c.wg.Add(1)
		go c.electEarly(g)
	}
	c.wg.Add(5)
	go c.trackMembers(memberEvents)
	go c.serveForwards()
	go c.nudger()
	go c.watch.run()
	go c.reportProgress()
	ok = true
	c.log.Info("cluster started", "addr", string(c.trans.LocalAddr()))
	return c, nil
}

// openStorage opens the bolt log and stable store and the file snapshot
// store under DataDir/raft. Everything in it is private to the node's
// user: directories 0700, files 0600, including what an older build made
// with raft's own wider modes.
func (c *Cluster) openStorage() (*Storage, error) {
	dir := filepath.Join(c.cfg.DataDir, "raft")
	snapDir := filepath.Join(dir, "snapshots")
	// raft's snapshot store would make its directory 0755.
	if err := os.MkdirAll(snapDir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: create %s: %w", snapDir, err)
	}
	if err := makePrivate(dir); err != nil {
		return nil, err
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("cluster: open raft log: %w", err)
	}
	c.closers = append(c.closers, bolt.Close)
	logs, err := raft.NewLogCache(512, bolt)
	if err != nil {
		return nil, fmt.Errorf("cluster: raft log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, c.cfg.SnapshotRetain, newHCLog(c.cfg.Logger, "raft-snapshot"))
	if err != nil {
		return nil, fmt.Errorf("cluster: open snapshot store: %w", err)
	}
	return &Storage{Logs: logs, Stable: bolt, Snapshots: privateSnapshots{SnapshotStore: snaps, dir: snapDir}}, nil
}

func (c *Cluster) runClosers() error {
	var errs []error
	// Reverse order: the transport before the store it was opened after.
	for i := len(c.closers) - 1; i >= 0; i-- {
		if err := c.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	c.closers = nil
	return errors.Join(errs...)
}

// Close stops the node: raft shuts down (without handing over leadership;
// call TransferLeadership first for a planned restart), then the transport
// and the stores close. Calls after the first return its result.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		close(c.stop)
		c.cancel()
		c.unsubMembers()
		err := c.raft.Shutdown().Error()
		c.wg.Wait()
		c.closeErr = errors.Join(err, c.runClosers())
		c.log.Info("cluster stopped")
	})
	return c.closeErr
}

// NodeID returns this node's id.
func (c *Cluster) NodeID() string { return c.cfg.NodeID }

// Addr returns the address other nodes reach this node at.
func (c *Cluster) Addr() string { return string(c.trans.LocalAddr()) }

// FSM returns the local state machine.
func (c *Cluster) FSM() *FSM { return c.fsm }

// Subscribe returns the events this node's FSM applies from now on; see
// FSM.Subscribe.
func (c *Cluster) Subscribe(buffer int) (<-chan Event, func()) { return c.fsm.Subscribe(buffer) }

// Propose stamps cmd with this node's id, the protocol version and the
// clock's time, and commits it through the leader: directly when this node
// leads, otherwise by forwarding it. It returns the raft index and the
// FSM's result for the command (nil or one of the package's sentinel
// errors). A successful return means the command committed and this node's
// own FSM has applied it, with every entry before it (read-your-writes):
// a caller acts on its local replica at once, so a Session started on a
// successful Claim sees every change the log holds before that Claim, such
// as the user's own callback handler (I5).
//
// While there is no leader, or the leader changes, Propose retries until
// ctx ends (ErrNotLeader). It never retries when the command may have
// committed: it returns ErrUncertain instead, and the caller reads the state
// to learn the outcome. It also returns ErrUncertain when the command
// committed but ctx ended before this replica applied it: a read then may
// not show it yet, and the caller reads again later, as for any uncertain
// outcome. Propose takes ownership of cmd.
func (c *Cluster) Propose(ctx context.Context, cmd *protocol.ClusterCommand) (uint64, error) {
	stamp(cmd, c.cfg.NodeID, c.cfg.Clock.Now())
	if err := validateCommand(cmd); err != nil {
		return 0, err
	}
	data, err := EncodeCommand(cmd)
	if err != nil {
		return 0, err
	}
	if len(data) > c.cfg.MaxCommandBytes {
		return 0, errorf(ErrTooLarge, "command of %d bytes, limit %d", len(data), c.cfg.MaxCommandBytes)
	}
	ctx, cancel := c.applyContext(ctx)
	defer cancel()
	out, err := c.submit(ctx, &protocol.ClusterForwardRequest{Body: &protocol.ClusterForwardRequest_Command{Command: data}})
	if err != nil {
		return 0, err
	}
	// Read-your-writes: the leader applied it; wait for this replica too.
	// A refusal is certain and changed nothing, so it stands; a success
	// this replica has not applied yet is not one the caller may act on.
	if werr := c.fsm.WaitApplied(ctx, out.index); werr != nil && out.result == nil {
		return out.index, errorf(ErrUncertain, "committed at index %d, not yet applied by this node: %v", out.index, context.Cause(ctx))
	}
	return out.index, out.result
}

// applyContext bounds ctx by ApplyTimeout when it has no deadline, and ends
// it when the cluster closes.
func (c *Cluster) applyContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancelT := context.WithTimeout(ctx, c.cfg.ApplyTimeout)
		ctx, cancelS := c.stopContext(ctx)
		return ctx, func() { cancelS(); cancelT() }
	}
	return c.stopContext(ctx)
}

func (c *Cluster) stopContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(c.ctx, func() { cancel(ErrClosed) })
	return ctx, func() { stop(); cancel(nil) }
}

// Retry pacing while no leader is known. These waits are for raft, which
// runs on real time, so they do not use Config.Clock.
const (
	retryMin = 5 * time.Millisecond
	retryMax = 100 * time.Millisecond
)

// applied is the outcome of a request the leader ran: its raft index and,
// for a command, the FSM's result.
type applied struct {
	index  uint64
	result error
}

// submit runs req on the leader, retrying while that is certainly safe. It
// returns an error when nothing was applied or the outcome is unknown.
func (c *Cluster) submit(ctx context.Context, req *protocol.ClusterForwardRequest) (applied, error) {
	wait := retryMin
	for {
		out, err := c.submitOnce(ctx, req)
		if err == nil || !retryable(err) {
			return out, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if errors.Is(context.Cause(ctx), ErrClosed) {
				return applied{}, ErrClosed
			}
			if errors.Is(err, ErrTimeout) {
				return applied{}, fmt.Errorf("%w: %w", err, ctx.Err())
			}
			return applied{}, fmt.Errorf("%w: %w (last: %v)", ErrNotLeader, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, retryMax)
	}
}

// retryable says whether a failed attempt certainly did not commit and so
// may run again.
func retryable(err error) bool {
	return errors.Is(err, errUnsent) || errors.Is(err, ErrNotLeader) || errors.Is(err, ErrTimeout)
}

// submitOnce runs req once: locally when this node leads, else on the
// leader it knows of.
func (c *Cluster) submitOnce(ctx context.Context, req *protocol.ClusterForwardRequest) (applied, error) {
	var resp *protocol.ClusterForwardResponse
	if c.raft.State() == raft.Leader {
		resp = c.handle(ctx, c.cfg.NodeID, req)
	} else {
		addr, id := c.raft.LeaderWithID()
		if addr == "" || string(id) == c.cfg.NodeID {
			return applied{}, errorf(ErrNotLeader, "no leader known")
		}
		if dl, ok := ctx.Deadline(); ok {
			req.TimeoutNanos = int64(time.Until(dl))
		}
		var err error
		if resp, err = c.trans.Forward(ctx, addr, req); err != nil {
			return applied{}, err
		}
	}
	err := codeError(resp.GetCode(), resp.GetMessage())
	if resp.GetIndex() > 0 {
		return applied{index: resp.GetIndex(), result: err}, nil
	}
	if err == nil && !commits(req) {
		return applied{}, nil
	}
	if err == nil {
		// Nothing applied and no error: a leader that breaks the protocol.
		err = errorf(ErrUncertain, "leader answered without an index")
	}
	return applied{}, err
}

// Claim proposes that this node own request (I2). It returns ErrClaimed
// when another node owns it and ErrCompleted when it is finished; claiming
// a request this node already owns succeeds.
func (c *Cluster) Claim(ctx context.Context, request, apiUser string) error {
	_, err := c.Propose(ctx, ClaimCommand(request, apiUser))
	return err
}

// Reserve proposes that presignature p belong to request, which this node
// must own (I1). Once Reserve returns nil, p is this request's forever; on
// ErrUncertain, read Request(request).Reserved to learn whether it is.
func (c *Cluster) Reserve(ctx context.Context, request string, p PresignatureRef) error {
	_, err := c.Propose(ctx, decided(ctx, ReserveCommand(request, p)))
	return err
}

// ReserveNext proposes a Reserve in which the FSM picks the oldest
// available presignature of key for request, so that concurrent Reserves
// never collide, and returns the one it picked. It returns ErrPoolEmpty
// when the pool has none, and ErrNotOwner or ErrCompleted when this node no
// longer owns request. On ErrUncertain a presignature may have been
// reserved; it stays the request's and is never used.
func (c *Cluster) ReserveNext(ctx context.Context, request, key string) (PresignatureRef, error) {
	if _, err := c.Propose(ctx, decided(ctx, ReserveCommand(request, PresignatureRef{KeyID: key}))); err != nil {
		return PresignatureRef{}, err
	}
	return c.lastReserved(request, key)
}

// lastReserved returns the presignature of key that this node's Reserve
// just committed for request: the last in its list. A node runs one
// Session per request, so nothing else of this node's appended to it since.
func (c *Cluster) lastReserved(request, key string) (PresignatureRef, error) {
	r, ok := c.fsm.Request(request)
	switch {
	case !ok || r.Status == StatusCompleted:
		return PresignatureRef{}, errorf(ErrCompleted, "request %q", request)
	case r.Status != StatusClaimed || r.Owner != c.cfg.NodeID:
		return PresignatureRef{}, errorf(ErrNotOwner, "node %q, request %q", c.cfg.NodeID, request)
	case len(r.Reserved) == 0 || r.Reserved[len(r.Reserved)-1].KeyID != key:
		return PresignatureRef{}, errorf(ErrInternal, "request %q: committed reservation not in the local replica", request)
	}
	return r.Reserved[len(r.Reserved)-1], nil
}

// Confirm commits proof that this node still owns request, changing
// nothing: ErrNotOwner or ErrCompleted when it does not. A Session confirms
// before it approves a config change, so that a node cut off from the
// quorum approves nothing new (I6).
func (c *Cluster) Confirm(ctx context.Context, request string) error {
	_, err := c.Propose(ctx, ConfirmCommand(request))
	return err
}

// Complete proposes the outcome of a request this node owns.
func (c *Cluster) Complete(ctx context.Context, request string, outcome Outcome, reason string) error {
	_, err := c.Propose(ctx, CompleteCommand(request, outcome, reason))
	return err
}

// Release proposes that node's unfinished requests return to unclaimed and
// their reserved presignatures burn. The leader's owner watch calls it for
// silent nodes; an operator may call it for a node known to be dead.
func (c *Cluster) Release(ctx context.Context, node string) error {
	_, err := c.Propose(ctx, ReleaseCommand(node, ""))
	return err
}

// HandBack proposes that this node's unfinished requests of apiUser return
// to unclaimed, their reserved presignatures burned, for another node to
// finish: this node has lost its way to the user's workspace.
func (c *Cluster) HandBack(ctx context.Context, apiUser string) error {
	_, err := c.Propose(ctx, ReleaseCommand(c.cfg.NodeID, apiUser))
	return err
}

// AddPresignatures adds presignatures to key's pool under this node's next
// origin sequence numbers. It calls seal once, with the number the first
// presignature must carry; seal returns the presignatures, numbered from
// there without gaps, each sealed with PresignatureRecordID(key, NodeID(),
// OriginSeq, ID) as its record id. With a non-empty reserveFor (one
// presignature only) the same entry reserves it for that request, which
// this node must own.
//
// This node's Adds of one key are proposed one at a time, in number order,
// so the FSM's high-water mark never refuses a fresh one. On ErrUncertain
// the caller must discard the presignatures: they may be in the pool, or
// even spent, and their numbers are used up either way.
func (c *Cluster) AddPresignatures(ctx context.Context, key, reserveFor string, seal func(firstSeq uint64) ([]SealedPresignature, error)) error {
	mu := c.adder(key)
	mu.Lock()
	defer mu.Unlock()
	first := max(c.nextOrigin[key], c.fsm.HighWater(key, c.cfg.NodeID)+1)
	ps, err := seal(first)
	if err != nil {
		return err
	}
	for i, p := range ps {
		if p.OriginSeq != first+uint64(i) {
			return errorf(ErrBadCommand, "presignature %q numbered %d, want %d", p.ID, p.OriginSeq, first+uint64(i))
		}
	}
	// Numbers are never reused, whatever the outcome.
	c.nextOrigin[key] = first + uint64(len(ps))
	cmd := PresignaturesAddedCommand(key, reserveFor, ps)
	if reserveFor != "" {
		cmd = decided(ctx, cmd)
	}
	_, err = c.Propose(ctx, cmd)
	return err
}

// adder returns the lock that orders this node's Adds of key.
func (c *Cluster) adder(key string) *sync.Mutex {
	c.addersMu.Lock()
	defer c.addersMu.Unlock()
	mu, ok := c.adders[key]
	if !ok {
		mu = &sync.Mutex{}
		c.adders[key] = mu
	}
	return mu
}

// AddAPIUser proposes an API user record; ErrRecordExists if it exists.
func (c *Cluster) AddAPIUser(ctx context.Context, r Record) error {
	_, err := c.Propose(ctx, APIUserAddedCommand(r))
	return err
}

// RecordKeyringExport commits, for the audit log, that this node is about
// to hand out the keyring versions encrypted to the age recipients. A node
// hands the file out only once this returned nil.
func (c *Cluster) RecordKeyringExport(ctx context.Context, recipients []string, versions []uint32) error {
	_, err := c.Propose(ctx, KeyringExportedCommand(recipients, versions))
	return err
}

// RefreshKey proposes that key record key, whose share is of epoch from,
// hold sealed instead: the share a refresh produced, of epoch epoch. Every
// live presignature of the key burns in the same entry. ErrStaleKey when
// the record no longer holds the share of epoch from (another refresh
// committed first), ErrUnknownKey when there is no such record.
func (c *Cluster) RefreshKey(ctx context.Context, key string, from, epoch, sealed []byte) error {
	_, err := c.Propose(ctx, KeyRefreshedCommand(key, from, epoch, sealed))
	return err
}

// AddKeyRecord proposes a key record; ErrRecordExists if it exists.
func (c *Cluster) AddKeyRecord(ctx context.Context, r Record) error {
	_, err := c.Propose(ctx, KeyRecordAddedCommand(r))
	return err
}
