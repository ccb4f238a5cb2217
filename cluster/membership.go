package cluster

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/protocol"
)

// AddVoter adds a node to the cluster as a voter, or promotes a non-voter,
// through the leader (forwarded when this node follows). Once the cluster
// has a member table, the node must be in it with that address: joining
// (attestation, the keyring hand-over, the member table) comes first.
func (c *Cluster) AddVoter(ctx context.Context, id, addr string) error {
	return c.addServer(ctx, id, addr, true)
}

// addServer adds a voter or a non-voter through the leader.
func (c *Cluster) addServer(ctx context.Context, id, addr string, voter bool) error {
	return c.membership(ctx, &protocol.ClusterForwardRequest{Body: &protocol.ClusterForwardRequest_AddVoter{
		AddVoter: &protocol.ClusterAddVoter{Id: id, Address: addr, Nonvoter: !voter},
	}})
}

// RemoveServer removes a node from the cluster, through the leader. The
// owner watch then releases the requests the node still owned, after
// OwnerTimeout.
func (c *Cluster) RemoveServer(ctx context.Context, id string) error {
	return c.membership(ctx, &protocol.ClusterForwardRequest{Body: &protocol.ClusterForwardRequest_RemoveServer{
		RemoveServer: &protocol.ClusterRemoveServer{Id: id},
	}})
}

func (c *Cluster) membership(ctx context.Context, req *protocol.ClusterForwardRequest) error {
	ctx, cancel := c.applyContext(ctx)
	defer cancel()
	_, err := c.submit(ctx, req)
	return err
}

// Server is one member of the raft configuration.
type Server struct {
	ID      string
	Address string
	Voter   bool
}

// Servers returns the current raft configuration as this node knows it.
func (c *Cluster) Servers() ([]Server, error) {
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("cluster: read configuration: %w", err)
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

// Leader returns the id and address of the leader this node knows of, or
// empty strings.
func (c *Cluster) Leader() (id, addr string) {
	a, i := c.raft.LeaderWithID()
	return string(i), string(a)
}

// IsLeader reports whether this node is the leader now.
func (c *Cluster) IsLeader() bool { return c.raft.State() == raft.Leader }

// WaitLeader blocks until this node knows of a leader, or ctx ends. The
// wait is for raft's election, so it runs on real time.
func (c *Cluster) WaitLeader(ctx context.Context) (string, error) {
	for {
		if id, _ := c.Leader(); id != "" {
			return id, nil
		}
		t := time.NewTimer(retryMin)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("%w: %w", ErrNotLeader, ctx.Err())
		case <-c.stop:
			t.Stop()
			return "", ErrClosed
		case <-t.C:
		}
	}
}

// TransferLeadership hands leadership to another voter; call it before a
// planned restart of the leader (DESIGN.md measured 3-4 ms). It fails when
// this node does not lead.
func (c *Cluster) TransferLeadership() error {
	if err := c.raft.LeadershipTransfer().Error(); err != nil {
		return raftError(err)
	}
	return nil
}

// Status is a summary of this node's raft state, for the admin API.
type Status struct {
	NodeID      string
	State       string
	LeaderID    string
	Term        uint64
	LastIndex   uint64
	CommitIndex uint64
	// AppliedIndex is raft's: the last entry handed to the FSM, which may
	// not have applied it yet. Barrier waits until it has.
	AppliedIndex uint64
	LastContact  time.Time
}

// Status returns a summary of this node's raft state.
func (c *Cluster) Status() Status {
	id, _ := c.Leader()
	return Status{
		NodeID:       c.cfg.NodeID,
		State:        c.raft.State().String(),
		LeaderID:     id,
		Term:         c.raft.CurrentTerm(),
		LastIndex:    c.raft.LastIndex(),
		CommitIndex:  c.raft.CommitIndex(),
		AppliedIndex: c.raft.AppliedIndex(),
		LastContact:  c.raft.LastContact(),
	}
}

// Barrier waits, for at most timeout, until this node's FSM has applied
// every entry committed before the call, so that reads from it reflect
// them; a new leader's FSM replays the log this way. Only the leader can run
// it: elsewhere it fails with ErrNotLeader.
func (c *Cluster) Barrier(timeout time.Duration) error {
	err := c.await(c.raft.Barrier(timeout))
	if err != nil && !errors.Is(err, ErrClosed) {
		return raftError(err)
	}
	return err
}

// Snapshot asks raft to take a snapshot now.
func (c *Cluster) Snapshot() error {
	if err := c.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("cluster: snapshot: %w", err)
	}
	return nil
}

// Init starts the member table of a cluster this node bootstrapped: its
// cluster id, the attestation policy, and this node as its first member.
// The id is the one Config.KnownMembers names, when the node was given one
// without a member table (a node rebuilding a cluster from a keyring
// recovery file, so that the cluster's snapshots restore onto it), and a
// new random one otherwise. It is a no-op once the cluster has an id.
func (c *Cluster) Init(ctx context.Context, policy enclave.Policy, self Member) error {
	if c.fsm.ClusterID() != "" {
		return nil
	}
	id := c.cfg.KnownMembers.ClusterID
	if id == "" || len(c.cfg.KnownMembers.Members) > 0 {
		var raw [8]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return fmt.Errorf("cluster: cluster id: %w", err)
		}
		id = "c-" + hex.EncodeToString(raw[:])
	}
	self.ID = c.cfg.NodeID
	_, err := c.Propose(ctx, InitCommand(id, policy, self))
	if errors.Is(err, ErrMember) && c.fsm.ClusterID() != "" {
		return nil // initialized meanwhile
	}
	return err
}

// SetPolicy replaces the cluster's attestation policy through raft. It
// decides who may join from now on; members already in stay.
func (c *Cluster) SetPolicy(ctx context.Context, p enclave.Policy) error {
	if err := p.Validate(); err != nil {
		return errorf(ErrBadCommand, "policy: %v", err)
	}
	_, err := c.Propose(ctx, PolicySetCommand(p))
	return err
}

// RemoveMember removes a node from raft's configuration and from the
// member table, so that it can no longer connect. The leader refuses to
// remove the last voter, and a voter whose removal would leave fewer
// voters reachable from it than a quorum of those that remain (the cluster
// would stop): it judges by its own heartbeats, wherever RemoveMember is
// called. The leader releases the node's requests after OwnerTimeout.
func (c *Cluster) RemoveMember(ctx context.Context, id string) error {
	servers, err := c.Servers()
	if err != nil {
		return err
	}
	found := false
	for _, s := range servers {
		found = found || s.ID == id
	}
	_, member := c.fsm.MemberByID(id)
	if !found && !member {
		return errorf(ErrMember, "%q is not a member", id)
	}
	if found {
		if err := c.RemoveServer(ctx, id); err != nil {
			return err
		}
	}
	if member {
		if _, err := c.Propose(ctx, MemberRemovedCommand(id)); err != nil && !errors.Is(err, ErrMember) {
			return err
		}
	}
	return nil
}

// Reachable reports whether this node believes node id is up: itself, or
// (on the leader) a server whose heartbeats succeed, or (on a follower)
// any known server, since only the leader watches heartbeats.
func (c *Cluster) Reachable(id string) bool {
	if id == c.cfg.NodeID {
		return true
	}
	if !c.IsLeader() {
		return true
	}
	_, silent := c.Silent()[id]
	return !silent
}

// Member implements PeerAuthorizer for the TLS transport: the member whose
// identity key is pub. The replica's member table decides once it holds
// one and has applied at least as far as the table this node saw last;
// until then (a restart replaying its log, a joiner catching up) the table
// it saw last does.
func (c *Cluster) Member(pub ed25519.PublicKey) (string, bool) {
	k := c.known.Load()
	if c.fsm.ClusterID() != "" && c.fsm.AppliedIndex() >= k.Index {
		return c.fsm.Member(pub)
	}
	for _, m := range k.Members {
		if m.IdentityKey.Equal(pub) {
			return m.ID, true
		}
	}
	return "", false
}

// trackMembers keeps the known member table (Member's fallback) up to date
// with the replica, and hands each newer one to Config.SaveMembers.
func (c *Cluster) trackMembers(events <-chan Event) {
	defer c.wg.Done()
	for ev := range events {
		switch ev.Kind {
		case EventInitialized, EventMemberAdded, EventMemberRemoved, EventRestored:
		default:
			continue
		}
		k := KnownMembers{ClusterID: c.fsm.ClusterID(), Index: c.fsm.AppliedIndex(), Members: c.fsm.Members()}
		if k.ClusterID == "" {
			continue
		}
		if cur := c.known.Load(); cur.ClusterID == k.ClusterID && k.Index < cur.Index {
			// A restart replaying its log from before the table it saw
			// last: the tables on the way are older, and would lock out
			// the members that joined since (the leader among them), so
			// that the node could never catch up.
			continue
		}
		c.known.Store(&k)
		if c.cfg.SaveMembers != nil {
			if err := c.cfg.SaveMembers(k); err != nil {
				c.log.Warn("cluster could not save the member table", "err", err)
			}
		}
	}
}

// SetCallback records the cluster's callback handler through raft: its
// URL and public key (PKIX DER), or neither for a cluster that approves by
// itself. Every node compares its own config with it.
func (c *Cluster) SetCallback(ctx context.Context, url string, handlerKey []byte) error {
	_, err := c.Propose(ctx, CallbackSetCommand(url, handlerKey))
	return err
}

// Members returns the member table from the local replica.
func (c *Cluster) Members() []Member { return c.fsm.Members() }

// ClusterID returns the cluster's id, empty before Init.
func (c *Cluster) ClusterID() string { return c.fsm.ClusterID() }

// Policy returns the cluster's attestation policy, and false before Init.
func (c *Cluster) Policy() (enclave.Policy, bool) { return c.fsm.Policy() }

// IsVoter reports whether node id is a voter in the raft configuration.
func (c *Cluster) IsVoter(id string) (bool, error) {
	servers, err := c.Servers()
	if err != nil {
		return false, err
	}
	for _, s := range servers {
		if s.ID == id {
			return s.Voter, nil
		}
	}
	return false, nil
}

// WaitCaughtUp blocks until this node's replica holds every entry the
// cluster had committed when it was called, or ctx ends: on the leader a
// Barrier; on a follower it commits a Sync through the leader, which
// returns once the local FSM applied it and so everything before it. A
// node that just joined or restarted serves nothing before.
func (c *Cluster) WaitCaughtUp(ctx context.Context) error {
	if c.IsLeader() {
		return c.Barrier(c.cfg.ApplyTimeout)
	}
	_, err := c.Propose(ctx, SyncCommand())
	return err
}
