package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/protocol"
)

// serveForwards answers the requests other nodes forward to this one,
// applying at most MaxForwardsInFlight at once so that raft can batch
// them.
func (c *Cluster) serveForwards() {
	defer c.wg.Done()
	for {
		var rpc *ForwardRPC
		select {
		case rpc = <-c.trans.ForwardConsumer():
		case <-c.stop:
			return
		}
		select {
		case c.forwards <- struct{}{}:
		case <-c.stop:
			rpc.Respond(errorResponse(ErrClosed))
			return
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer func() { <-c.forwards }()
			timeout := time.Duration(rpc.Request.GetTimeoutNanos())
			if timeout <= 0 || timeout > c.cfg.ApplyTimeout {
				timeout = c.cfg.ApplyTimeout
			}
			ctx, cancel := context.WithTimeout(c.ctx, timeout)
			defer cancel()
			resp := c.handle(ctx, rpc.Peer, rpc.Request)
			rpc.Respond(resp)
			if resp.GetIndex() > 0 {
				c.nudge()
			}
		}()
	}
}

// nudge asks the nudger to spread the commit index.
func (c *Cluster) nudge() {
	select {
	case c.nudges <- struct{}{}:
	default:
	}
}

// nudger spreads the commit index to followers after forwarded commits.
//
// A follower's Propose returns once its own FSM has applied the command,
// but raft tells followers about a commit only with the next AppendEntries:
// with the next entry, or after CommitTimeout when the log is idle. So
// after forwarded commits the leader appends a barrier (raft's no-op
// entry), whose replication carries the commit index at once. Nudges
// coalesce: at most one barrier is in flight, so a busy leader adds at most
// one barrier per commit round trip.
func (c *Cluster) nudger() {
	defer c.wg.Done()
	for {
		select {
		case <-c.nudges:
		case <-c.stop:
			return
		}
		if c.raft.State() != raft.Leader {
			continue
		}
		_ = c.await(c.raft.Barrier(c.cfg.ApplyTimeout))
	}
}

// await returns f's error, or ErrClosed once the cluster is closing. raft
// never answers a barrier still queued when it shuts down (its future has
// no shutdown channel, and Barrier's timeout bounds only the queueing), so
// a plain f.Error() could block Close for ever; the goroutine left waiting
// then ends with the process.
func (c *Cluster) await(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-c.stop:
		return ErrClosed
	}
}

func errorResponse(err error) *protocol.ClusterForwardResponse {
	return &protocol.ClusterForwardResponse{Code: errorCode(err), Message: err.Error()}
}

// handle runs a request from peer (this node's id for its own requests,
// else the member id its transport authenticated) on this node, which must
// be the leader. A command must be stamped with peer's id, and only a
// member may change the membership. It never forwards again, so a request
// cannot loop between nodes that disagree on who leads. The response has a
// non-zero index exactly when the request committed; a request that
// commits nothing (see commits) succeeds with none.
func (c *Cluster) handle(ctx context.Context, peer string, req *protocol.ClusterForwardRequest) *protocol.ClusterForwardResponse {
	if peer == "" {
		return errorResponse(errorf(ErrForbidden, "request from an unauthenticated peer"))
	}
	if c.raft.State() != raft.Leader {
		return errorResponse(errorf(ErrNotLeader, "%s is not the leader", c.cfg.NodeID))
	}
	timeout := c.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return errorResponse(errorf(ErrTimeout, "deadline passed before the leader got the request"))
	}
	var f raft.IndexFuture
	switch b := req.GetBody().(type) {
	case *protocol.ClusterForwardRequest_Command:
		if len(b.Command) > c.cfg.MaxCommandBytes {
			return errorResponse(errorf(ErrTooLarge, "command of %d bytes, limit %d", len(b.Command), c.cfg.MaxCommandBytes))
		}
		// Garbage never reaches the log.
		cmd, err := DecodeCommand(b.Command)
		if err != nil {
			return errorResponse(err)
		}
		// A node speaks only for itself: the FSM trusts the command's node
		// (a Claim's owner, a Reserve's or Complete's claimant).
		if cmd.GetNode() != peer {
			c.log.Warn("cluster forwarded command refused: not in its sender's name", "peer", peer, "command_node", cmd.GetNode())
			return errorResponse(errorf(ErrForbidden, "command in the name of node %q sent by member %q", cmd.GetNode(), peer))
		}
		// A restore in progress appends nothing else (see Restore).
		c.restoring.RLock()
		f = c.raft.Apply(b.Command, timeout)
		c.restoring.RUnlock()
	case *protocol.ClusterForwardRequest_AddVoter:
		id, addr := b.AddVoter.GetId(), b.AddVoter.GetAddress()
		if err := checkID("voter", id); err != nil || addr == "" {
			return errorResponse(errorf(ErrBadCommand, "add voter needs an id and an address"))
		}
		// Once there is a member table, only its members join raft, and a
		// node asks to be a voter only for itself: one whose data directory
		// does not outlive it stays a non-voter, which only it knows.
		if c.fsm.ClusterID() != "" {
			if m, ok := c.fsm.MemberByID(id); !ok || m.Address != addr {
				return errorResponse(errorf(ErrMember, "%q at %s is not in the member table", id, addr))
			}
			if !b.AddVoter.GetNonvoter() && id != peer {
				return errorResponse(errorf(ErrForbidden, "member %q asked to make %q a voter; a node promotes only itself", peer, id))
			}
		}
		if b.AddVoter.GetNonvoter() {
			c.log.Info("cluster adding non-voter", "server", id, "addr", addr)
			f = c.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout)
		} else {
			c.log.Info("cluster adding voter", "voter", id, "addr", addr)
			f = c.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout)
		}
	case *protocol.ClusterForwardRequest_RemovalCheck:
		if err := c.removalRefusal(b.RemovalCheck.GetId()); err != nil {
			return errorResponse(err)
		}
		return &protocol.ClusterForwardResponse{}
	case *protocol.ClusterForwardRequest_RemoveServer:
		id := b.RemoveServer.GetId()
		// The quorum rule needs liveness, which only the leader knows.
		if err := c.removalRefusal(id); err != nil {
			return errorResponse(err)
		}
		c.log.Info("cluster removing server", "server", id)
		f = c.raft.RemoveServer(raft.ServerID(id), 0, timeout)
	case *protocol.ClusterForwardRequest_Progress:
		c.progress.record(peer, c.raft.CurrentTerm(), c.cfg.Clock.Now(), b.Progress)
		return &protocol.ClusterForwardResponse{}
	default:
		return errorResponse(errorf(ErrBadCommand, "empty forwarded request"))
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		return errorResponse(errorf(ErrUncertain, "waiting for the commit: %v", ctx.Err()))
	}
	if err != nil {
		return errorResponse(raftError(err))
	}
	resp := &protocol.ClusterForwardResponse{Index: f.Index()}
	if af, ok := f.(raft.ApplyFuture); ok {
		if rerr, ok := af.Response().(error); ok && rerr != nil {
			resp.Code, resp.Message = errorCode(rerr), rerr.Error()
		}
	}
	return resp
}

// raftError maps raft's errors to ours, keeping apart the ones that prove
// nothing was appended (safe to retry) from the ones that do not.
func raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return errorf(ErrNotLeader, "%v", err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return errorf(ErrTimeout, "%v", err)
	case errors.Is(err, raft.ErrCantBootstrap), errors.Is(err, raft.ErrUnsupportedProtocol):
		return errorf(ErrInternal, "%v", err)
	default:
		// ErrLeadershipLost, ErrRaftShutdown, ErrAbortedByRestore and
		// anything new: the entry may or may not commit.
		return errorf(ErrUncertain, "%v", err)
	}
}
