package cluster

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/clock"
)

// ownerWatch is the leader's detector of silent owners (DESIGN "path of one
// transaction", step 7).
//
// Liveness comes from raft itself: the leader heartbeats every follower,
// and raft reports each failed heartbeat and each recovery as an
// observation. A node is silent from the first failed heartbeat the current
// leader saw (timed by Config.Clock) until a heartbeat succeeds again. A
// node that owns requests but is no longer a voter is silent from the first
// check that notices. When a silent node owns unfinished requests and has
// been silent for OwnerTimeout, the leader proposes Release of it; when the
// transport reports the silent node gone (its cluster port refuses
// connections: the process died, the host lives), the leader releases it at
// once. The Release command is stamped by the leader's clock; Apply needs
// no time.
//
// The table is the current leader's alone: it starts empty when a node
// becomes leader, so after a failover a dead owner is released OwnerTimeout
// after the new leader's first failed heartbeat to it. When raft's
// observation channel overflows, the table is cleared too: forgetting a
// failure only delays a release, while missing a recovery could release a
// live node.
type ownerWatch struct {
	c        *Cluster
	obsCh    chan raft.Observation
	observer *raft.Observer
	// kick asks for a check now: a heartbeat failed, perhaps to a node
	// that is gone.
	kick chan struct{}

	mu sync.Mutex
	// silent maps a node to the time (by Config.Clock) it was first seen
	// silent.
	silent  map[string]time.Time
	dropped uint64
}

func newOwnerWatch(c *Cluster) *ownerWatch {
	w := &ownerWatch{c: c, obsCh: make(chan raft.Observation, 1024), kick: make(chan struct{}, 1), silent: map[string]time.Time{}}
	w.observer = raft.NewObserver(w.obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	})
	c.raft.RegisterObserver(w.observer)
	return w
}

// run consumes observations and, in a second goroutine, checks owners.
func (w *ownerWatch) run() {
	defer w.c.wg.Done()
	defer w.c.raft.DeregisterObserver(w.observer)
	w.c.wg.Add(1)
	go w.checkLoop()
	for {
		select {
		case o := <-w.obsCh:
			w.observe(o)
		case <-w.c.stop:
			return
		}
	}
}

func (w *ownerWatch) observe(o raft.Observation) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch d := o.Data.(type) {
	case raft.FailedHeartbeatObservation:
		if _, ok := w.silent[string(d.PeerID)]; !ok {
			w.silent[string(d.PeerID)] = w.c.cfg.Clock.Now()
		}
		select {
		case w.kick <- struct{}{}:
		default:
		}
	case raft.ResumedHeartbeatObservation:
		delete(w.silent, string(d.PeerID))
	case raft.LeaderObservation, raft.RaftState:
		clear(w.silent)
	}
}

func (w *ownerWatch) checkLoop() {
	defer w.c.wg.Done()
	for {
		tick, t := clock.After(w.c.cfg.Clock, w.c.cfg.OwnerCheckInterval)
		select {
		case <-tick:
			w.check()
		case <-w.kick:
			t.Stop()
			w.check()
		case <-w.c.stop:
			t.Stop()
			return
		}
	}
}

// check releases owners that have been silent for OwnerTimeout, or that
// are silent and gone.
func (w *ownerWatch) check() {
	c := w.c
	if c.raft.State() != raft.Leader {
		w.reset()
		return
	}
	if n := w.observer.GetNumDropped(); n != w.droppedSeen() {
		w.mu.Lock()
		w.dropped = n
		clear(w.silent)
		w.mu.Unlock()
		c.log.Warn("cluster owner watch lost observations; silence timers restarted")
		return
	}
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return
	}
	members := map[string]raft.ServerAddress{}
	for _, s := range cf.Configuration().Servers {
		members[string(s.ID)] = s.Address
	}
	gone := func(string) bool { return false }
	if g, ok := c.trans.(goneReporter); ok {
		gone = func(node string) bool { addr, ok := members[node]; return ok && g.Gone(addr) }
	}
	owners := c.fsm.owners()
	now := c.cfg.Clock.Now()
	type release struct {
		node string
		gone bool
	}
	var due []release
	w.mu.Lock()
	for _, node := range slices.Sorted(maps.Keys(owners)) {
		if node == c.cfg.NodeID {
			continue
		}
		since, ok := w.silent[node]
		if _, member := members[node]; !ok && !member {
			since, ok = now, true
			w.silent[node] = now
		}
		if !ok {
			continue
		}
		if g := gone(node); g || now.Sub(since) >= c.cfg.OwnerTimeout {
			due = append(due, release{node, g})
		}
	}
	w.mu.Unlock()
	for _, r := range due {
		c.log.Warn("cluster releasing silent owner", "owner", r.node, "owned", len(c.fsm.OwnedBy(r.node)), "gone", r.gone)
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.ApplyTimeout)
		err := c.Release(ctx, r.node)
		cancel()
		if err != nil {
			c.log.Warn("cluster release failed", "owner", r.node, "err", err)
		}
	}
}

func (w *ownerWatch) droppedSeen() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

func (w *ownerWatch) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.silent)
}

// Silent returns the nodes that this node, while it leads, considers
// silent, with the time (by Config.Clock) each went silent. It is empty on
// a follower.
func (c *Cluster) Silent() map[string]time.Time {
	c.watch.mu.Lock()
	defer c.watch.mu.Unlock()
	return maps.Clone(c.watch.silent)
}
