package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/coterie-mpc/coterie/cluster"
)

// Messages of the coordinator.
type (
	// addUser starts serving a user.
	addUser struct{ user *userState }
	// clusterEvent is an event the local FSM applied.
	clusterEvent struct{ ev cluster.Event }
	// ensureSession asks that a Session run for a request this node owns.
	ensureSession struct{ request, user string }
	// drain stops the Pollers: no new claims; Sessions finish.
	drain struct{}
	// resyncTick re-reads the FSM (Config.ResyncInterval); gen names the
	// coordinator incarnation whose timer sent it.
	resyncTick struct{ gen int64 }
)

// coordinator is the top supervisor of one node's actors. Its children
// are the Sessions supervisor, and per user a Poller and a Callback, and
// per key a PresignPool; it supervises them with Config.Services (restart
// with backoff, escalate when a child fails too often). It routes the
// cluster's events: a Claim this node won starts a Session, a Release
// makes the user's Poller claim again, pool changes go to the key's
// PresignPool. On every start it resumes what the FSM says this node owns.
type coordinator struct {
	sys       *System
	sessions  *actor.PID
	pollers   map[string]*actor.PID
	callbacks map[string]*actor.PID
	pools     map[string]*actor.PID // by key
	// waiting holds requests for users not added yet (a restarted node
	// resumes before the node adds its users).
	waiting  map[string][]string // user -> requests to resume
	reclaims map[string][]string // user -> requests to claim
	draining bool
	gen      int64
}

func newCoordinator(s *System) *coordinator {
	return &coordinator{sys: s, pollers: map[string]*actor.PID{}, callbacks: map[string]*actor.PID{},
		pools: map[string]*actor.PID{}, waiting: map[string][]string{}, reclaims: map[string][]string{}}
}

// Receive implements actor.Actor.
func (c *coordinator) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		strat := newStrategy("sessions", c.sys.cfg.Sessions, exhaustedStop, c.sys.cfg.Clock, c.sys.log, c.sys.metrics, c.sys.halt)
		c.sessions = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return newSessions(c.sys) }, actor.WithSupervisor(strat)))
		for _, u := range c.sys.allUsers() {
			c.spawnUser(ctx, u)
		}
		c.resync(ctx)
		c.gen = c.sys.coordGen.Add(1)
		c.sys.later(c.sys.cfg.ResyncInterval, ctx.Self(), &resyncTick{gen: c.gen})
	case *resyncTick:
		if m.gen != c.gen {
			return // a timer of an earlier incarnation
		}
		if !c.draining {
			c.resync(ctx)
		}
		c.sys.later(c.sys.cfg.ResyncInterval, ctx.Self(), &resyncTick{gen: c.gen})
	case *actor.Restarting, *actor.Stopping, *actor.Stopped:
		// protoactor stops the children; a restart spawns them again.
	case *addUser:
		c.spawnUser(ctx, m.user)
		key := m.user.key()
		for _, r := range c.waiting[key] {
			c.ensure(ctx, r, key)
		}
		delete(c.waiting, key)
		rs := c.reclaims[key]
		delete(c.reclaims, key)
		for _, r := range rs {
			c.reclaim(ctx, r, key)
		}
	case *ensureSession:
		c.ensure(ctx, m.request, m.user)
	case *clusterEvent:
		c.event(ctx, m.ev)
	case *drain:
		c.draining = true
		for id, pid := range c.pollers {
			ctx.Stop(pid)
			delete(c.pollers, id)
		}
		ctx.Send(c.sessions, m)
	case *actor.Terminated:
		// A child stopped: a Poller while draining, or a child its
		// supervisor gave up on (that failure was escalated).
	}
}

func (c *coordinator) spawnUser(ctx actor.Context, u *userState) {
	if _, ok := c.callbacks[u.key()]; ok {
		return
	}
	c.callbacks[u.key()] = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return newCallbackActor(c.sys, u) }))
	if !c.draining {
		c.pollers[u.key()] = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return newPoller(c.sys, u) }))
	}
	if u.SigningKey != nil {
		if _, ok := c.pools[u.ShareRecordID]; !ok {
			c.pools[u.ShareRecordID] = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return newPresignPool(c.sys, u) }))
		}
	}
}

// ensure starts a Session for request unless one runs.
func (c *coordinator) ensure(ctx actor.Context, request, user string) {
	u, ok := c.sys.user(user)
	cb := c.callbacks[user]
	if !ok || cb == nil {
		c.waiting[user] = append(c.waiting[user], request)
		return
	}
	ctx.Send(c.sessions, &startSession{request: request, user: u, callback: cb})
}

// resync reads the FSM: Sessions for what this node owns, claims for what
// was released, and a check of every pool.
func (c *coordinator) resync(ctx actor.Context) {
	cl := c.sys.cfg.Cluster
	for _, r := range cl.OwnedBy(c.sys.self) {
		if info, ok := cl.Request(r); ok {
			c.ensure(ctx, r, info.APIUserID)
		}
	}
	for _, info := range cl.Unclaimed() {
		c.reclaim(ctx, info.ID, info.APIUserID)
	}
	for _, pid := range c.pools {
		ctx.Send(pid, &poolCheck{})
	}
}

func (c *coordinator) reclaim(ctx actor.Context, request, user string) {
	if p, ok := c.pollers[user]; ok {
		ctx.Send(p, &reclaim{request: request})
		return
	}
	if !c.draining {
		c.reclaims[user] = append(c.reclaims[user], request)
	}
}

func (c *coordinator) event(ctx actor.Context, ev cluster.Event) {
	switch ev.Kind {
	case cluster.EventClaimed:
		if ev.Node == c.sys.self {
			c.ensure(ctx, ev.RequestID, ev.APIUserID)
		}
	case cluster.EventReleased:
		c.reclaim(ctx, ev.RequestID, ev.APIUserID)
	case cluster.EventReserved:
		if pid, ok := c.pools[ev.Presignature.KeyID]; ok {
			ctx.Send(pid, &poolTake{})
		}
	case cluster.EventPresignaturesAdded, cluster.EventKeyRefreshed:
		// A refresh burned the pool: it refills with the new share.
		if pid, ok := c.pools[ev.KeyID]; ok {
			ctx.Send(pid, &poolCheck{})
		}
	case cluster.EventRestored:
		c.resync(ctx)
	}
}
