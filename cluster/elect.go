package cluster

import (
	"context"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/clock"
)

// Early elections: a follower does not wait out a leader that is gone.
//
// raft starts an election when a follower's heartbeat timer, armed for a
// random time between HeartbeatTimeout and twice that, fires and finds no
// contact with the leader for HeartbeatTimeout: 1 to 3 HeartbeatTimeouts
// after the leader's last contact. When the leader's process has died and
// its host lives, its cluster port refuses connections, and the wait buys
// nothing. So a follower that has not heard from the leader for a few
// heartbeat intervals probes the leader's port, and when the probe is
// refused it wakes raft's heartbeat timer as soon as HeartbeatTimeout has
// passed since the last contact (ReloadConfig with a shorter heartbeat
// timeout is raft's one way to wake it; the old value is put back at once).
//
// Followers wake one after the other, in the order of their ids, stagger
// apart: raft's pre-vote fails while the others still see a leader, and
// candidates that start together split the vote. The follower whose turn
// comes once a quorum of the others has given the leader up wins the
// election. A leader that only stopped answering (a hung process, a
// partition) is never refused, and raft's own timer deals with it.
//
// raft keeps its time by the system clock, so the wait since the last
// contact is measured by it; Config.Clock paces the checks.

// electStagger returns the time between two followers' early elections.
func (c *Cluster) electStagger() time.Duration { return c.cfg.HeartbeatTimeout / 5 }

// electEarly checks every heartbeat interval whether the leader is gone.
func (c *Cluster) electEarly(g goneReporter) {
	defer c.wg.Done()
	interval := c.cfg.HeartbeatTimeout / 10 // raft's heartbeat interval
	var probed, woken time.Time             // the last contacts already probed and acted on
	gone := false
	for {
		tick, t := clock.After(c.cfg.Clock, interval)
		select {
		case <-tick:
		case <-c.stop:
			t.Stop()
			return
		}
		addr, leader := c.raft.LeaderWithID()
		last := c.raft.LastContact()
		if c.raft.State() != raft.Follower || addr == "" || time.Since(last) < 3*interval {
			continue
		}
		if !last.Equal(probed) {
			ctx, cancel := context.WithTimeout(c.ctx, interval)
			gone, probed = g.Probe(ctx, addr), last
			cancel()
		}
		if !gone || last.Equal(woken) || time.Since(last) < c.cfg.HeartbeatTimeout+time.Duration(c.electRank(leader))*c.electStagger() {
			continue
		}
		woken = last
		c.log.Info("cluster leader gone: its cluster port refuses connections; electing early", "leader", string(leader))
		if err := c.wakeElection(); err != nil {
			c.log.Warn("cluster early election failed", "err", err)
		}
	}
}

// electRank returns this node's place among the voters other than leader,
// by id.
func (c *Cluster) electRank(leader raft.ServerID) int {
	cf := c.raft.GetConfiguration()
	if cf.Error() != nil {
		return 0
	}
	var ids []string
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter && s.ID != leader {
			ids = append(ids, string(s.ID))
		}
	}
	slices.Sort(ids)
	return max(slices.Index(ids, c.cfg.NodeID), 0)
}

// wakeElection makes raft's follower loop check its heartbeat timeout now.
func (c *Cluster) wakeElection() error {
	rc := c.raft.ReloadableConfig()
	hb := rc.HeartbeatTimeout
	rc.HeartbeatTimeout = hb - time.Millisecond
	if err := c.raft.ReloadConfig(rc); err != nil {
		return err
	}
	rc.HeartbeatTimeout = hb
	return c.raft.ReloadConfig(rc)
}
