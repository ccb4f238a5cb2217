package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/protocol"
)

// AddVoter adds a node to the cluster as a voter, through the leader
// (forwarded when this node follows). The new node must already run with
// the same transport kind and no Bootstrap. Authenticating the new node
// (attestation, keyring hand-over) happens before this call, in the enclave
// layer.
func (c *Cluster) AddVoter(ctx context.Context, id, addr string) error {
	return c.membership(ctx, &protocol.ClusterForwardRequest{Body: &protocol.ClusterForwardRequest_AddVoter{
		AddVoter: &protocol.ClusterAddVoter{Id: id, Address: addr},
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
