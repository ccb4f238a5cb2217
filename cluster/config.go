package cluster

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/keyring"
)

// Config configures a Cluster. Start from DefaultConfig. It holds the
// node's identity key: never print or log a Config.
type Config struct {
	// NodeID is this node's id: its raft server id and the node named in
	// the commands it proposes. It must stay the same across restarts.
	NodeID string
	// DataDir is the node's data directory. Raft keeps its bolt log and
	// stable store (raft/raft.db) and its snapshots (raft/snapshots/) under
	// it. Required unless Storage is set.
	DataDir string
	// BindAddr is the TCP address of the node's mutual-TLS port, which
	// raft, forwarded proposals and the join handshake share, such as
	// "127.0.0.1:7000", or with a Network any address it listens on.
	// Required unless Transport is set.
	BindAddr string
	// AdvertiseAddr is the address other nodes dial; empty means BindAddr.
	// It must name a host, not 0.0.0.0, and is required when BindAddr is
	// not a TCP address.
	AdvertiseAddr string
	// Network is how the TLS transport listens on BindAddr and dials
	// peers; nil means plain TCP.
	Network Network

	// Bootstrap makes a node without raft state start a new cluster whose
	// voters are itself and Peers. A node that already has state ignores
	// it. Every node bootstrapped together must be given the same voters.
	Bootstrap bool
	// Peers are the other voters of a bootstrapped cluster; empty for a
	// single voter.
	Peers []Peer

	// Identity is the node's Ed25519 identity key (the enclave-sealed
	// one). The TLS transport makes its certificate from it, in memory, at
	// every start, and the copies of rotated keyring versions are wrapped
	// to it. Required unless Transport is set.
	Identity ed25519.PrivateKey
	// Members says which TLS peers are members: only they may open raft
	// and forwarding streams, in either direction, and a forwarded command
	// must be stamped with its sender's member id. Nil means the cluster's
	// own member table (Cluster.Member): the FSM's, or KnownMembers while
	// the replica replays. New never builds an unauthenticated network
	// transport.
	Members PeerAuthorizer
	// Join serves the join handshake to TLS peers, members or not. Nil
	// means the cluster serves joins itself (Cluster.ServeJoin) when
	// Attester and Keyring are set, and refuses join streams otherwise.
	Join JoinServer
	// JoinTimeout bounds one ServeJoin call: token and evidence checks
	// and the commits a join makes.
	JoinTimeout time.Duration
	// MaxConnsPerPeer bounds the streams one member key may hold open to
	// this node at once. Raft uses up to about six per peer (pool,
	// pipeline, heartbeat, vote, snapshot) and a node forwards on at most
	// half of this bound per target, so the default of 32 leaves room for
	// both under load while a runaway or hostile member cannot exhaust the
	// node.
	MaxConnsPerPeer int
	// MaxJoinConns bounds the join streams of keys that are not members,
	// all together: joins are rare and run one at a time per joiner, so 4
	// is plenty while unlisted keys get no more.
	MaxJoinConns int
	// MaxHandshakes bounds the TLS handshakes in progress (each ends within
	// TransportTimeout). Connections over it are closed at once, so a flood
	// of silent or slow dialers costs bounded memory.
	MaxHandshakes int

	// HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout and
	// CommitTimeout are raft's timing. DESIGN.md: about 500 ms for the first
	// two gives about 1 s failover; tighter risks false elections while MPC
	// keeps the CPUs busy. A leader that is gone is replaced sooner (see
	// elect.go). The lease must be below HeartbeatTimeout (a leader that
	// has not heard from a quorum for the lease steps down; 250 ms made
	// leaders step down under presigning load on two cores). CommitTimeout is how long an idle leader waits
	// before telling followers of its latest commits; followers learn of
	// forwarded commits at once anyway (see nudger), so it only delays their
	// view of the leader's own proposals.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration

	// SnapshotInterval and SnapshotThreshold say when raft snapshots: it
	// checks every interval and snapshots when at least threshold entries
	// were applied since the last one. TrailingLogs entries stay in the log
	// after a snapshot so slow followers catch up without one.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// SnapshotRetain is how many snapshots stay on disk.
	SnapshotRetain int

	// ApplyTimeout bounds a proposal when its context has no deadline.
	ApplyTimeout time.Duration
	// TransportTimeout bounds each raft RPC and forwarded-proposal I/O.
	TransportTimeout time.Duration
	// MaxCommandBytes bounds an encoded command, and so every forwarded
	// message.
	MaxCommandBytes int
	// MaxForwardsInFlight bounds the forwarded proposals the leader applies
	// at once.
	MaxForwardsInFlight int

	// OwnerTimeout is how long the leader lets a node that owns unfinished
	// requests be silent (failing raft heartbeats, or no longer a member)
	// before it proposes Release of that node. See doc.go.
	OwnerTimeout time.Duration
	// OwnerCheckInterval is how often the leader checks for silent owners.
	OwnerCheckInterval time.Duration

	// Attester is this node's enclave: it makes the evidence a member shows
	// a joiner, and verifies a joiner's. Keyring is the cluster keyring: the
	// one the node encrypts with, wraps to a joiner and adds rotated
	// versions to. With both set, this node serves joins.
	Attester enclave.Attester
	Keyring  *keyring.Keyring
	// KnownMembers is the member table this node saw last (see
	// KnownMembers); SaveMembers, when set, keeps each new one as the FSM
	// applies member changes. A node sets both from its sealed store.
	KnownMembers KnownMembers
	SaveMembers  func(KnownMembers) error
	// SaveKeyring seals Keyring to the node's disk atomically
	// (store.SaveKeyring). When set, with Identity and Keyring, this node
	// rotates the cluster keyring (RotateKeyring) and takes in the versions
	// others rotate in: it opens its copies with Identity, adds them to
	// Keyring, seals it with SaveKeyring, and reports each version through
	// raft once it is sealed.
	SaveKeyring func(*keyring.Keyring) error

	// Clock gives proposer timestamps and drives the owner-timeout watcher.
	Clock clock.Clock
	// Logger receives the cluster's logs, and raft's through an adapter.
	Logger *slog.Logger

	// Transport, when set, replaces the mutual-TLS transport that New would
	// open on BindAddr. Only tests set it: the in-process harness passes an
	// InmemTransport.
	Transport Transport
	// Storage, when set, replaces the bolt stores and file snapshots that
	// New would open under DataDir. Tests that restart a node from memory
	// pass the same Storage again.
	Storage *Storage
}

// Peer is a voter of a bootstrapped cluster.
type Peer struct {
	ID      string
	Address string
}

// Storage is raft's persistent state.
type Storage struct {
	Logs      raft.LogStore
	Stable    raft.StableStore
	Snapshots raft.SnapshotStore
}

// NewInmemStorage returns Storage that lives in memory, for tests.
func NewInmemStorage() *Storage {
	s := raft.NewInmemStore()
	return &Storage{Logs: s, Stable: s, Snapshots: raft.NewInmemSnapshotStore()}
}

// DefaultConfig returns a Config with DESIGN.md's timing and the system
// clock. NodeID, DataDir and BindAddr must still be set.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:    500 * time.Millisecond,
		ElectionTimeout:     500 * time.Millisecond,
		LeaderLeaseTimeout:  450 * time.Millisecond,
		CommitTimeout:       50 * time.Millisecond,
		SnapshotInterval:    2 * time.Minute,
		SnapshotThreshold:   8192,
		TrailingLogs:        10240,
		SnapshotRetain:      2,
		ApplyTimeout:        5 * time.Second,
		TransportTimeout:    2 * time.Second,
		MaxCommandBytes:     4 << 20,
		MaxForwardsInFlight: 256,
		JoinTimeout:         30 * time.Second,
		MaxConnsPerPeer:     32,
		MaxJoinConns:        4,
		MaxHandshakes:       64,
		OwnerTimeout:        3 * time.Second,
		OwnerCheckInterval:  250 * time.Millisecond,
		Clock:               clock.Real(),
		Logger:              slog.Default(),
	}
}

// Validate reports every problem with the config at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("cluster config: "+format, args...)) }
	if c.NodeID == "" {
		bad("NodeID is required")
	} else if err := checkID("node", c.NodeID); err != nil {
		bad("NodeID: %v", err)
	}
	if c.Transport == nil {
		if c.BindAddr == "" {
			bad("BindAddr is required without a Transport")
		} else if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
			if c.Network == nil {
				bad("BindAddr %q: %v", c.BindAddr, err)
			} else if c.AdvertiseAddr == "" {
				bad("AdvertiseAddr is required: BindAddr %q is not a TCP address peers can dial", c.BindAddr)
			}
		}
		if adv := c.advertise(); adv != "" {
			if host, _, err := net.SplitHostPort(adv); err != nil {
				bad("AdvertiseAddr %q: %v", adv, err)
			} else if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				bad("AdvertiseAddr %q must name a reachable host; set it when binding 0.0.0.0", adv)
			}
		}
		// The network transport is always authenticated.
		if len(c.Identity) == 0 {
			bad("Identity is required for the TLS transport")
		}
	} else {
		if c.BindAddr != "" || c.AdvertiseAddr != "" || c.Network != nil {
			bad("BindAddr, AdvertiseAddr and Network must be empty with a Transport")
		}
		if c.Members != nil || c.Join != nil {
			bad("Members and Join apply only to the TLS transport; they must be empty with a Transport")
		}
	}
	switch {
	case len(c.Identity) == 0:
	case len(c.Identity) != ed25519.PrivateKeySize:
		bad("Identity is %d bytes, want an Ed25519 private key of %d", len(c.Identity), ed25519.PrivateKeySize)
	case !ed25519.NewKeyFromSeed(c.Identity.Seed()).Equal(c.Identity):
		bad("Identity is damaged: its public half does not match its seed")
	}
	if c.SaveKeyring != nil && (len(c.Identity) == 0 || c.Keyring == nil) {
		bad("SaveKeyring needs Identity and Keyring: the copies of rotated versions open with the one and join the other")
	}
	if c.Storage == nil && c.DataDir == "" {
		bad("DataDir is required without Storage")
	}
	if c.Storage != nil && (c.Storage.Logs == nil || c.Storage.Stable == nil || c.Storage.Snapshots == nil) {
		bad("Storage needs Logs, Stable and Snapshots")
	}
	ids := map[string]bool{c.NodeID: true}
	for _, p := range c.Peers {
		if p.ID == "" || p.Address == "" {
			bad("peer %+v needs an ID and an Address", p)
		} else if ids[p.ID] {
			bad("peer id %q appears twice (or is NodeID)", p.ID)
		}
		ids[p.ID] = true
	}
	if len(c.Peers) > 0 && !c.Bootstrap {
		bad("Peers only apply with Bootstrap")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"HeartbeatTimeout", c.HeartbeatTimeout, 5 * time.Millisecond},
		{"ElectionTimeout", c.ElectionTimeout, 5 * time.Millisecond},
		{"LeaderLeaseTimeout", c.LeaderLeaseTimeout, 5 * time.Millisecond},
		{"CommitTimeout", c.CommitTimeout, time.Millisecond},
		{"SnapshotInterval", c.SnapshotInterval, 5 * time.Millisecond},
		{"ApplyTimeout", c.ApplyTimeout, time.Millisecond},
		{"TransportTimeout", c.TransportTimeout, time.Millisecond},
		{"JoinTimeout", c.JoinTimeout, time.Millisecond},
		{"OwnerTimeout", c.OwnerTimeout, time.Millisecond},
		{"OwnerCheckInterval", c.OwnerCheckInterval, time.Millisecond},
	} {
		if d.v < d.min {
			bad("%s is %v, want at least %v", d.name, d.v, d.min)
		}
	}
	if c.LeaderLeaseTimeout >= c.HeartbeatTimeout {
		// An early election shortens raft's heartbeat timeout for a moment,
		// and raft wants the lease no longer than that.
		bad("LeaderLeaseTimeout %v is not below HeartbeatTimeout %v", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		bad("ElectionTimeout %v is below HeartbeatTimeout %v", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.OwnerTimeout < c.ElectionTimeout {
		bad("OwnerTimeout %v is below ElectionTimeout %v: owners would be released during an ordinary election", c.OwnerTimeout, c.ElectionTimeout)
	}
	if c.SnapshotThreshold == 0 {
		bad("SnapshotThreshold must be positive")
	}
	if c.SnapshotRetain < 1 {
		bad("SnapshotRetain must be at least 1")
	}
	if c.MaxCommandBytes < 1024 || c.MaxCommandBytes > maxDecodeBytes {
		bad("MaxCommandBytes %d is outside 1 KiB..%d", c.MaxCommandBytes, maxDecodeBytes)
	}
	if c.MaxForwardsInFlight < 1 {
		bad("MaxForwardsInFlight must be positive")
	}
	if c.MaxConnsPerPeer < minConnsPerPeer {
		bad("MaxConnsPerPeer %d is below %d: raft alone needs several streams per peer", c.MaxConnsPerPeer, minConnsPerPeer)
	}
	if c.MaxJoinConns < 1 {
		bad("MaxJoinConns must be positive")
	}
	if c.MaxHandshakes < 1 {
		bad("MaxHandshakes must be positive")
	}
	if c.Clock == nil {
		bad("Clock is required")
	}
	if c.Logger == nil {
		bad("Logger is required")
	}
	return errors.Join(errs...)
}

// advertise returns the address other nodes dial.
func (c Config) advertise() string {
	if c.AdvertiseAddr != "" {
		return c.AdvertiseAddr
	}
	return c.BindAddr
}

// maxFrame bounds one forwarded message: a command plus its envelope.
func (c Config) maxFrame() int { return c.MaxCommandBytes + 4096 }

// minConnsPerPeer is the least MaxConnsPerPeer: raft's streams to one peer
// and a couple of forwards.
const minConnsPerPeer = 8

// maxForwards is how many forwards this node runs at once to one target:
// half the per-peer bound, so that with the target's defaults its raft
// streams always fit beside them.
func (c Config) maxForwards() int { return max(1, c.MaxConnsPerPeer/2) }
