package cluster

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
)

// progressInterval is how often a follower reports its progress to the
// leader. hashicorp/raft keeps each follower's match index private, so a
// leader knows a follower's progress only from the follower's own report;
// once a second keeps the view fresh at one small frame per follower.
const progressInterval = time.Second

// Progress is a member's raft progress as the member itself last reported
// it to the leader: the member's view of its own state, relayed, not the
// leader's replication state.
type Progress struct {
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	// ReportedAt is when the leader received the report, by the leader's
	// Config.Clock.
	ReportedAt time.Time
}

// progressTable holds the reports the leader received in its current
// term; a report from an earlier term (before a lost and regained
// leadership) is not shown.
type progressTable struct {
	mu      sync.Mutex
	reports map[string]termProgress
}

type termProgress struct {
	leaderTerm uint64
	Progress
}

// record keeps peer's report, received in leaderTerm at now.
func (p *progressTable) record(peer string, leaderTerm uint64, now time.Time, r *protocol.ClusterProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reports == nil {
		p.reports = map[string]termProgress{}
	}
	p.reports[peer] = termProgress{leaderTerm: leaderTerm, Progress: Progress{
		Term: r.GetTerm(), CommitIndex: r.GetCommitIndex(), AppliedIndex: r.GetAppliedIndex(), ReportedAt: now,
	}}
}

// current returns the reports received in leaderTerm.
func (p *progressTable) current(leaderTerm uint64) map[string]Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]Progress{}
	for id, r := range p.reports {
		if r.leaderTerm == leaderTerm {
			out[id] = r.Progress
		}
	}
	return out
}

// Progress returns, on the leader, each follower's progress as the
// follower last reported it during this leadership: a follower missing
// from the map has not reported since. It is empty on a follower, which
// sees no one's reports.
func (c *Cluster) Progress() map[string]Progress {
	if c.raft.State() != raft.Leader {
		return map[string]Progress{}
	}
	return maps.Clone(c.progress.current(c.raft.CurrentTerm()))
}

// reportProgress sends this node's progress to the leader every
// progressInterval while it follows. A report that fails is not retried:
// the next one supersedes it, and the leader's heartbeats, not these
// reports, decide liveness.
func (c *Cluster) reportProgress() {
	defer c.wg.Done()
	for {
		tick, t := clock.After(c.cfg.Clock, progressInterval)
		select {
		case <-tick:
		case <-c.stop:
			t.Stop()
			return
		}
		addr, id := c.raft.LeaderWithID()
		if c.raft.State() != raft.Follower || addr == "" || string(id) == c.cfg.NodeID {
			continue
		}
		st := c.Status()
		req := &protocol.ClusterForwardRequest{Body: &protocol.ClusterForwardRequest_Progress{Progress: &protocol.ClusterProgress{
			Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: c.fsm.AppliedIndex(),
		}}}
		ctx, cancel := context.WithTimeout(c.ctx, progressInterval)
		if _, err := c.trans.Forward(ctx, addr, req); err != nil {
			c.log.Debug("cluster progress report not delivered", "leader", string(id), "err", err)
		}
		cancel()
	}
}

// commits says whether the leader answers req with a raft index: every
// request does, except a progress report and a removal's check, which
// change nothing.
func commits(req *protocol.ClusterForwardRequest) bool {
	switch req.GetBody().(type) {
	case *protocol.ClusterForwardRequest_Progress, *protocol.ClusterForwardRequest_RemovalCheck:
		return false
	}
	return true
}
