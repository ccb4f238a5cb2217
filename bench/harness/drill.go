package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/coterie-mpc/coterie/bench/launch"
	"github.com/coterie-mpc/coterie/bench/report"
	"github.com/coterie-mpc/coterie/node"
)

// Drill timings.
const (
	// ownerWait bounds the wait for a node that owns requests, to fault.
	ownerWait = 5 * time.Second
	// movedEvery paces the polls for the faulted node's requests: the
	// resolution of the failover times.
	movedEvery = 20 * time.Millisecond
	// The toxics of Latency and Bandwidth.
	toxicLatency, toxicJitter = 100 * time.Millisecond, 20 * time.Millisecond
	toxicKBps                 = 256
)

// drill runs cfg.Rounds rounds, one fault each, appending them to the
// report. A round that fails is recorded with its error and ends the
// drill: the cluster's state is then unknown.
func (s *session) drill(ctx context.Context) error {
	rng := rand.New(rand.NewPCG(s.cfg.Load.Seed, 0x6472696c6c))
	for i := range s.cfg.Rounds {
		f := s.cfg.Schedule[i%len(s.cfg.Schedule)]
		rctx, cancel := context.WithTimeout(ctx, s.cfg.RoundTimeout)
		r, err := s.round(rctx, f, rng)
		cancel()
		r.Round = i + 1
		if err != nil {
			r.Err = err.Error()
		}
		s.rep.Faults = append(s.rep.Faults, r)
		s.log.Info("drill round", "round", r.Round, "fault", f, "target", r.Target, "failover", r.Failover, "err", r.Err)
		if err != nil {
			return fmt.Errorf("harness: drill round %d (%s): %w", i+1, f, err)
		}
		if err := s.sleep(ctx, s.cfg.Settle); err != nil {
			return err
		}
	}
	return nil
}

// round waits for a whole cluster, injects f, measures how long the
// faulted node's requests took to move, undoes f and waits until the
// cluster is whole again.
func (s *session) round(ctx context.Context, f Fault, rng *rand.Rand) (report.Fault, error) {
	r := report.Fault{Kind: string(f)}
	c := s.c
	if err := c.WaitVoters(ctx, len(c.Nodes)); err != nil {
		return r, err
	}
	target, owned, err := s.target(ctx, f, rng)
	if err != nil {
		return r, err
	}
	n := c.Nodes[target]
	if f != Latency && f != Bandwidth && f != RestartAll {
		r.Target = n.ID
	}
	start := s.cfg.Clock.Now()
	r.At = start.Sub(s.started)
	if err := s.inject(ctx, f, target); err != nil {
		return r, err
	}
	if r.Target != "" {
		r.Failover = s.moved(ctx, n.ID, owned, start)
	}
	if !f.kills() && f != RestartAll {
		if err := s.sleep(ctx, s.cfg.Hold); err != nil {
			return r, err
		}
	}
	if err := s.undo(ctx, f, target); err != nil {
		return r, err
	}
	r.Healed = s.cfg.Clock.Now().Sub(s.started)
	return r, c.WaitVoters(ctx, len(c.Nodes))
}

// target picks the node f acts on, with the requests it owns.
func (s *session) target(ctx context.Context, f Fault, rng *rand.Rand) (int, []string, error) {
	leader, err := s.leader(ctx)
	if err != nil {
		return 0, nil, err
	}
	switch f {
	case KillLeader, PartitionLeader:
		owned, err := s.ownedSoon(ctx, leader)
		return leader, owned, err
	case KillRandom:
		i := rng.IntN(len(s.c.Nodes))
		return i, s.owned(ctx, i), nil
	case KillOwner, SigStop, Partition, PartitionWorkspace:
		return s.owner(ctx, leader, rng)
	}
	return leader, nil, nil
}

// leader returns the index of the node the serving nodes name leader.
func (s *session) leader(ctx context.Context) (int, error) {
	for _, n := range s.c.Nodes {
		st, err := s.status(ctx, n)
		if err != nil || st.Raft.LeaderID == "" {
			continue
		}
		if i := slices.IndexFunc(s.c.Nodes, func(m *launch.Node) bool { return m.ID == st.Raft.LeaderID }); i >= 0 {
			return i, nil
		}
	}
	return 0, errors.New("harness: no node names a leader")
}

// ownedSoon waits, up to ownerWait, until node i owns requests, so that
// the fault has requests to move, and returns them (none when it owned
// none in time).
func (s *session) ownedSoon(ctx context.Context, i int) ([]string, error) {
	deadline := s.cfg.Clock.Now().Add(ownerWait)
	for {
		if owned := s.owned(ctx, i); len(owned) > 0 || !s.cfg.Clock.Now().Before(deadline) {
			return owned, nil
		}
		if err := s.sleep(ctx, movedEvery); err != nil {
			return nil, err
		}
	}
}

// owner waits, up to ownerWait, for a follower that owns requests; then
// takes the leader if it owns some, or else a follower drawn at random.
func (s *session) owner(ctx context.Context, leader int, rng *rand.Rand) (int, []string, error) {
	deadline := s.cfg.Clock.Now().Add(ownerWait)
	for s.cfg.Clock.Now().Before(deadline) {
		for i := range s.c.Nodes {
			if i == leader {
				continue
			}
			if owned := s.owned(ctx, i); len(owned) > 0 {
				return i, owned, nil
			}
		}
		if err := s.sleep(ctx, movedEvery); err != nil {
			return 0, nil, err
		}
	}
	if owned := s.owned(ctx, leader); len(owned) > 0 {
		return leader, owned, nil
	}
	i := (leader + 1 + rng.IntN(len(s.c.Nodes)-1)) % len(s.c.Nodes)
	return i, s.owned(ctx, i), nil
}

// owned returns the unfinished requests node i owns.
func (s *session) owned(ctx context.Context, i int) []string {
	st, err := s.status(ctx, s.c.Nodes[i])
	if err != nil {
		return nil
	}
	return st.Owned
}

func (s *session) status(ctx context.Context, n *launch.Node) (node.Status, error) {
	if !n.Running() || n.Admin == nil {
		return node.Status{}, fmt.Errorf("harness: %s does not run", n.ID)
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Launch.CallTimeout)
	defer cancel()
	return n.Admin.Status(cctx)
}

// inject starts f on node target.
func (s *session) inject(ctx context.Context, f Fault, target int) error {
	c := s.c
	switch f {
	case KillLeader, KillOwner, KillRandom:
		s.keepStages(ctx, c.Nodes[target].ID)
		return c.Kill(target)
	case SigStop:
		return c.SigStop(target)
	case Partition, PartitionLeader:
		return c.Nodes[target].Link.Blackhole()
	case PartitionWorkspace:
		return c.Nodes[target].WorkspaceLink.Blackhole()
	case Latency, Bandwidth:
		for _, l := range s.links() {
			for _, dir := range []launch.Direction{launch.Upstream, launch.Downstream} {
				var err error
				if f == Latency {
					_, err = l.AddLatency(dir, toxicLatency, toxicJitter)
				} else {
					_, err = l.AddBandwidth(dir, toxicKBps)
				}
				if err != nil {
					return err
				}
			}
		}
		return nil
	case RestartAll:
		var errs []error
		for i, n := range c.Nodes {
			s.keepStages(ctx, n.ID)
			errs = append(errs, c.StopNode(i))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("harness: fault %q is unknown", f)
}

// undo ends f on node target.
func (s *session) undo(ctx context.Context, f Fault, target int) error {
	c := s.c
	switch f {
	case KillLeader, KillOwner, KillRandom:
		return c.Restart(ctx, target)
	case SigStop:
		return c.SigCont(target)
	case Partition, PartitionLeader:
		c.Nodes[target].Link.ResetToxics(ctx)
	case PartitionWorkspace:
		c.Nodes[target].WorkspaceLink.ResetToxics(ctx)
	case Latency, Bandwidth:
		for _, l := range s.links() {
			l.ResetToxics(ctx)
		}
	case RestartAll:
		return c.RestartAll(ctx)
	}
	return nil
}

// links returns every link of the cluster: each node's, to its peers and
// to the workspace.
func (s *session) links() []*launch.Link {
	var out []*launch.Link
	for _, n := range s.c.Nodes {
		out = append(out, n.Link, n.WorkspaceLink)
	}
	return out
}

// moved polls, until ctx ends, the requests lost owned when it was
// faulted at start, and returns for each how long after start another
// node claimed it or it completed elsewhere. A request that lost had
// completed itself is left out.
func (s *session) moved(ctx context.Context, lost string, owned []string, start time.Time) []time.Duration {
	var out []time.Duration
	left := slices.Clone(owned)
	for len(left) > 0 {
		for _, id := range slices.Clone(left) {
			r, ok := s.request(ctx, lost, id)
			if !ok {
				continue
			}
			switch {
			case r.Status == "completed" && r.LastOwner == lost:
				left = slices.DeleteFunc(left, func(x string) bool { return x == id })
			case r.Status == "completed" || (r.Owner != "" && r.Owner != lost):
				out = append(out, s.cfg.Clock.Now().Sub(start))
				left = slices.DeleteFunc(left, func(x string) bool { return x == id })
			}
		}
		if len(left) == 0 || s.sleep(ctx, movedEvery) != nil {
			break
		}
	}
	slices.Sort(out)
	return out
}

// request reads request id from a serving node other than lost.
func (s *session) request(ctx context.Context, lost, id string) (node.RequestListing, bool) {
	for _, n := range s.c.Nodes {
		if n.ID == lost || !n.Running() || n.Admin == nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, s.cfg.Launch.CallTimeout)
		r, err := n.Admin.Request(cctx, id)
		cancel()
		if err == nil {
			return r, true
		}
	}
	return node.RequestListing{}, false
}
