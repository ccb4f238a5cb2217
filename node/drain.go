package node

import (
	"context"
	"errors"
	"fmt"
	"time"
)

const (
	// handBackTimeout bounds the proposals that end a departure (the
	// Release of this node, its removal), which run even when the grace
	// period was cut short.
	handBackTimeout = 30 * time.Second
	// newLeaderTimeout bounds the wait to learn who leads after this node
	// handed leadership over.
	newLeaderTimeout = 5 * time.Second
)

// DrainReport says what a planned departure did. It holds no secret.
type DrainReport struct {
	NodeID string `json:"node_id"`
	// TransferredTo is the voter that took over leadership from this node;
	// empty when this node did not lead, or the hand-over failed (the
	// cluster then elects a leader after this node stops).
	TransferredTo string `json:"transferred_to,omitempty"`
	// HandedBack lists the requests still unfinished at the end of the
	// grace period, which this node released for the others to claim at
	// once.
	HandedBack []string `json:"handed_back"`
	// Left is true when the node also left the cluster for good.
	Left bool `json:"left"`
}

// Drain prepares the node for a planned restart, for SIGTERM on `node
// run`: it hands raft leadership to another voter if this node leads,
// stops claiming, lets the sessions in flight finish within
// Config.ShutdownGrace (or until ctx ends, which cuts the grace short),
// and releases the requests still unfinished, so that other nodes claim
// them at once instead of after owner_timeout. The node stays a member;
// meanwhile /v1/health answers 429 and the status says "draining".
// Afterwards the node serves nothing more: Close it. Only a serving node
// drains; otherwise the error wraps ErrNotReady.
func (n *Node) Drain(ctx context.Context) (DrainReport, error) {
	n.drainMu.Lock()
	defer n.drainMu.Unlock()
	if !n.phase.CompareAndSwap(int32(PhaseServing), int32(PhaseDraining)) {
		return DrainReport{NodeID: n.cfg.NodeID}, fmt.Errorf("%w: the node is %s", ErrNotReady, n.Phase())
	}
	defer close(n.drained)
	return n.drain(ctx)
}

// Leave takes the node out of its cluster for good, for `node cluster
// leave`: it drains like Drain (the status says "leaving"), then removes
// the node from raft's configuration and the member table. It refuses,
// before anything drains, when this node is the last voter or, as far as
// the leader can tell, its departure would leave the other voters without
// a quorum. Afterwards Drained is closed: Close the node and exit. A node
// that left cannot start again; join it anew with a fresh data directory.
func (n *Node) Leave(ctx context.Context) (DrainReport, error) {
	n.drainMu.Lock()
	defer n.drainMu.Unlock()
	rep := DrainReport{NodeID: n.cfg.NodeID}
	if p := n.Phase(); p != PhaseServing {
		return rep, fmt.Errorf("%w: the node is %s", ErrNotReady, p)
	}
	if err := n.leaveCheck(ctx); err != nil {
		return rep, err
	}
	if !n.phase.CompareAndSwap(int32(PhaseServing), int32(PhaseLeaving)) {
		return rep, fmt.Errorf("%w: the node is %s", ErrNotReady, n.Phase())
	}
	defer close(n.drained)
	rep, err := n.drain(ctx)
	rctx, cancel := context.WithTimeout(context.Background(), handBackTimeout)
	defer cancel()
	if rerr := n.cluster.RemoveMember(rctx, n.cfg.NodeID); rerr != nil {
		return rep, errors.Join(err, fmt.Errorf("node: %s drained but is still a member (a restart brings it back; "+
			"`coterie node cluster remove %s` on another member removes it): %w", n.cfg.NodeID, n.cfg.NodeID, rerr))
	}
	rep.Left = true
	n.log.Info("node left the cluster", "node", n.cfg.NodeID, "cluster", n.cluster.ClusterID())
	return rep, err
}

// Drained is closed once a Drain or a Leave has run: the node serves
// nothing more, and `node run` closes it and exits.
func (n *Node) Drained() <-chan struct{} { return n.drained }

// drain runs a planned departure's steps; see Drain. The phase is set.
func (n *Node) drain(ctx context.Context) (DrainReport, error) {
	self := n.cfg.NodeID
	rep := DrainReport{NodeID: self, HandedBack: []string{}}
	n.log.Info("node draining", "phase", n.Phase(), "grace", n.cfg.ShutdownGrace)
	if n.cluster.IsLeader() {
		to, err := n.TransferLeadership(ctx)
		switch {
		case errors.Is(err, ErrRefused):
			n.log.Info("no other voter to hand leadership to")
		case err != nil:
			n.log.Warn("leadership not handed over; the others elect a leader once this node stops", "err", err)
		}
		rep.TransferredTo = to
	}
	n.mu.Lock()
	srv := n.serve
	n.mu.Unlock()
	if srv != nil {
		gctx, cancel := n.graceContext(ctx)
		err := srv.stop(gctx)
		cancel()
		if err != nil {
			n.log.Warn("actors stopped with an error", "err", err)
		}
	}
	owned := n.cluster.OwnedBy(self)
	if len(owned) == 0 {
		n.log.Info("node drained", "handed_back", 0)
		return rep, nil
	}
	// The actors have stopped, so nothing here works on these requests
	// any more: releasing them cannot let two nodes sign one (I2), and
	// their reserved presignatures burn (I1).
	rctx, cancel := context.WithTimeout(context.Background(), handBackTimeout)
	defer cancel()
	if err := n.cluster.Release(rctx, self); err != nil {
		return rep, fmt.Errorf("node: handing back %d unfinished requests (the leader releases them after owner_timeout): %w", len(owned), err)
	}
	rep.HandedBack = owned
	n.log.Info("node drained", "handed_back", len(owned))
	return rep, nil
}

// graceContext returns ctx bounded by the shutdown grace, timed by the
// node's clock.
func (n *Node) graceContext(ctx context.Context) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(ctx)
	t := n.clock.AfterFunc(n.cfg.ShutdownGrace, cancel)
	return gctx, func() { t.Stop(); cancel() }
}

// TransferLeadership hands raft leadership from this node to another
// voter and returns the new leader's id (empty if it is not known within
// a few seconds). It refuses, wrapping ErrRefused, on a node that does not
// lead and on the only voter.
func (n *Node) TransferLeadership(ctx context.Context) (string, error) {
	self := n.cfg.NodeID
	if !n.cluster.IsLeader() {
		leader, _ := n.cluster.Leader()
		if leader == "" {
			leader = "not known"
		}
		return "", fmt.Errorf("%w: %s does not lead (the leader is %s): run transfer-leader on the leader", ErrRefused, self, leader)
	}
	servers, err := n.cluster.Servers()
	if err != nil {
		return "", err
	}
	others := 0
	for _, s := range servers {
		if s.Voter && s.ID != self {
			others++
		}
	}
	if others == 0 {
		return "", fmt.Errorf("%w: %s is the only voter: there is no one to hand leadership to", ErrRefused, self)
	}
	if err := n.cluster.TransferLeadership(); err != nil {
		return "", err
	}
	n.log.Info("raft leadership handed over")
	ctx, cancel := context.WithTimeout(ctx, newLeaderTimeout)
	defer cancel()
	// The wait is for raft's election, which runs on real time.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if id, _ := n.cluster.Leader(); id != "" && id != self {
			return id, nil
		}
		select {
		case <-ctx.Done():
			return "", nil
		case <-tick.C:
		}
	}
}

// RemoveMember removes another node from the cluster (cluster.RemoveMember:
// refused for the last voter and when the remaining voters would lack a
// quorum). This node leaves with Leave instead, which drains it first.
func (n *Node) RemoveMember(ctx context.Context, id string) error {
	if id == n.cfg.NodeID {
		return fmt.Errorf("%w: %s is this node: `coterie node cluster leave` takes it out, after draining it", ErrRefused, id)
	}
	return n.cluster.RemoveMember(ctx, id)
}

// leaveCheck refuses a departure of this node that would stop the
// cluster, before the node drains rather than after: the leader applies
// the rule of cluster.RemoveMember by its own heartbeats (this node's, when
// it leads), since a follower cannot tell which voters are up.
func (n *Node) leaveCheck(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, handBackTimeout)
	defer cancel()
	return n.cluster.CheckRemoval(ctx, n.cfg.NodeID)
}
