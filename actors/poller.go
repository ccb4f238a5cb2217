package actors

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/request"
)

// Messages of the Poller.
type (
	// pollEvent is one event of the poll stream of generation gen.
	pollEvent struct {
		gen int
		ev  *protocol.WsPollEvent
	}
	// pollBroken says the stream of generation gen ended.
	pollBroken struct {
		gen int
		err error
	}
	// pollReconnect opens a new stream after the backoff.
	pollReconnect struct{ gen int }
	// claimDone is the outcome of a Claim proposal.
	claimDone struct {
		request string
		err     error
		took    time.Duration
	}
	// claimRetry retries the claims that waited (capacity or an unsure
	// outcome).
	claimRetry struct{}
	// reclaim asks the Poller to claim a request a Release returned.
	reclaim struct{ request string }
	// staggered says a request's claim stagger (Config.ClaimStagger) passed.
	staggered struct{ request string }
	// workspaceLost checks whether the stream broken since since is still
	// down, Config.WorkspaceTimeout later.
	workspaceLost struct{ since time.Time }
	// handedBack is the outcome of a HandBack proposal.
	handedBack struct {
		requests int
		err      error
	}
)

// errPollSilent ends a poll stream that sent nothing, not even a heartbeat,
// for three heartbeat intervals.
var errPollSilent = errors.New("no event or heartbeat on the poll stream")

// poller is Poller(U): it consumes the workspace's poll stream of one API
// user from a cursor (reconnecting with backoff, resuming from the last
// cursor seen), and proposes Claim{R} for each open request, unless the
// node is at its session capacity; the first claim that commits wins and
// the other nodes drop R. Claims that could not decide (no leader, an
// uncertain outcome that left R unclaimed) and claims deferred for
// capacity are retried after Config.RetryDelay.
//
// A stream that stays broken for Config.WorkspaceTimeout (the workspace is
// down, or this node is cut off from it) makes the Poller hand back this
// node's unfinished requests of the user, and it claims none of them until
// the stream works again: a node that cannot reach the workspace cannot
// finish them, and must not hold them while the others can.
//
// Supervision: Config.Services. A restart opens a new stream from cursor 0:
// the stream is at least once and claims are idempotent.
type poller struct {
	sys     *System
	user    *userState
	cursor  uint64
	gen     int
	cancel  context.CancelFunc
	backoff time.Duration
	// down is when the stream broke, zero while it works; handing is set
	// while a HandBack proposal is in flight.
	down    time.Time
	handing bool
	// claiming holds requests with a Claim in flight; waiting holds those
	// to retry, with the attempts made.
	claiming map[string]bool
	waiting  map[string]int
	retrying bool
	// stagger holds the requests considered: false while the claim
	// stagger runs, true once it passed.
	stagger map[string]bool
}

func newPoller(s *System, u *userState) *poller {
	return &poller{sys: s, user: u, claiming: map[string]bool{}, waiting: map[string]int{}, stagger: map[string]bool{}}
}

// Receive implements actor.Actor.
func (p *poller) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		p.backoff = p.sys.cfg.PollBackoffMin
		p.connect(ctx)
	case *actor.Restarting, *actor.Stopping:
		if p.cancel != nil {
			p.cancel()
		}
	case *pollEvent:
		if m.gen != p.gen {
			return
		}
		p.backoff = p.sys.cfg.PollBackoffMin
		p.up(ctx)
		if m.ev.GetCursor() > p.cursor {
			p.cursor = m.ev.GetCursor()
		}
		switch r := m.ev.GetRequest(); {
		case r == nil:
		case !request.ValidID(r.GetId()):
			// Nothing can be claimed or reported under it; the Session
			// checks the rest of a request's record.
			p.sys.log.Warn("poll event names a malformed request id, skipping it", "user", p.user.ID, "cursor", m.ev.GetCursor(), "len", len(r.GetId()))
		case open(r.GetState()):
			if r.GetState() == protocol.WsRequestState_WS_REQUEST_STATE_PENDING && r.GetCreatedAt() > 0 {
				p.sys.metrics.stage(stagePoll, p.sys.cfg.Clock.Now().Sub(time.Unix(0, r.GetCreatedAt())))
			}
			p.consider(ctx, r.GetId())
		}
	case *pollBroken:
		if m.gen != p.gen {
			return
		}
		p.sys.log.Warn("poll stream ended, reconnecting", "user", p.user.ID, "cursor", p.cursor, "delay", p.backoff, "err", m.err)
		p.sys.later(p.backoff, ctx.Self(), &pollReconnect{gen: p.gen})
		p.backoff = min(2*p.backoff, p.sys.cfg.PollBackoffMax)
		if p.down.IsZero() {
			p.down = p.sys.cfg.Clock.Now()
			p.sys.later(p.sys.cfg.WorkspaceTimeout, ctx.Self(), &workspaceLost{since: p.down})
		}
	case *workspaceLost:
		if p.down.Equal(m.since) {
			p.handBack(ctx)
			p.sys.later(p.sys.cfg.WorkspaceTimeout, ctx.Self(), m)
		}
	case *handedBack:
		p.handing = false
		if m.err != nil {
			p.sys.log.Error("cannot hand back the requests of a user whose workspace this node cannot reach", "user", p.user.ID, "requests", m.requests, "err", m.err)
		}
	case *pollReconnect:
		if m.gen == p.gen {
			p.connect(ctx)
		}
	case *reclaim:
		p.consider(ctx, m.request)
	case *staggered:
		if _, ok := p.stagger[m.request]; ok {
			p.stagger[m.request] = true
			p.consider(ctx, m.request)
		}
	case *claimDone:
		p.claimed(ctx, m)
	case *claimRetry:
		p.retrying = false
		for r := range p.waiting {
			p.consider(ctx, r)
		}
	}
}

// open reports whether a workspace request still needs a co-signer.
func open(s protocol.WsRequestState) bool {
	switch s {
	case protocol.WsRequestState_WS_REQUEST_STATE_PENDING, protocol.WsRequestState_WS_REQUEST_STATE_DELIVERED,
		protocol.WsRequestState_WS_REQUEST_STATE_CLAIMED:
		return true
	}
	return false
}

// up notes that the stream works: after a break, the requests the Poller
// left unclaimed meanwhile are considered again.
func (p *poller) up(ctx actor.Context) {
	if p.down.IsZero() {
		return
	}
	p.sys.log.Info("workspace reachable again", "user", p.user.ID, "down_for", p.sys.cfg.Clock.Now().Sub(p.down))
	p.down = time.Time{}
	for r := range p.waiting {
		p.consider(ctx, r)
	}
}

// handBack hands back this node's unfinished requests of the user, if it
// owns any.
func (p *poller) handBack(ctx actor.Context) {
	if p.handing {
		return
	}
	cl, user := p.sys.cfg.Cluster, p.user.key()
	n := 0
	for _, id := range cl.OwnedBy(p.sys.self) {
		if r, ok := cl.Request(id); ok && r.APIUserID == user {
			n++
		}
	}
	if n == 0 {
		return
	}
	p.sys.log.Warn("workspace unreachable, handing back this node's requests of the user", "user", p.user.ID, "requests", n, "down_for", p.sys.cfg.Clock.Now().Sub(p.down))
	p.handing = true
	self, root, timeout := ctx.Self(), p.sys.root, p.sys.cfg.CallTimeout
	p.sys.goTracked(func(sctx context.Context) {
		cctx, cancel := context.WithTimeout(sctx, timeout)
		defer cancel()
		root.Send(self, &handedBack{requests: n, err: cl.HandBack(cctx, user)})
	})
}

// connect opens a new poll stream from the cursor, read by a goroutine
// that reports each event as a message. The stream asks for heartbeats
// (Config.PollHeartbeat), and a watchdog ends it when three intervals pass
// without an event.
func (p *poller) connect(ctx actor.Context) {
	if p.cancel != nil {
		p.cancel()
	}
	p.gen++
	gen, cursor, self := p.gen, p.cursor, ctx.Self()
	sctx, cancel := context.WithCancel(p.sys.ctx)
	p.cancel = cancel
	ws, root, clk, beat := p.user.Workspace, p.sys.root, p.sys.cfg.Clock, p.sys.cfg.PollHeartbeat
	p.sys.goTracked(func(context.Context) {
		stx, silent := context.WithCancelCause(sctx)
		defer silent(nil)
		watch := func() clock.Timer {
			if beat == 0 {
				return noWatchdog{}
			}
			return clk.AfterFunc(3*beat, func() { silent(errPollSilent) })
		}
		watchdog := watch()
		stream, err := ws.Poll(stx, &protocol.WsPollRequest{Cursor: cursor, HeartbeatMs: uint32(beat / time.Millisecond)})
		for err == nil {
			var ev *protocol.WsPollEvent
			if ev, err = stream.Recv(); err == nil {
				watchdog.Stop()
				watchdog = watch()
				root.Send(self, &pollEvent{gen: gen, ev: ev})
			}
		}
		watchdog.Stop()
		if sctx.Err() == nil {
			if cause := context.Cause(stx); cause != nil {
				err = cause
			}
			root.Send(self, &pollBroken{gen: gen, err: err})
		}
	})
}

// forget drops what the Poller keeps about a decided request.
func (p *poller) forget(request string) {
	delete(p.waiting, request)
	delete(p.stagger, request)
}

// claimDelay is how long this node waits before claiming request: its rank
// among the members, ordered by a hash of the request and each member's
// id, times ClaimStagger. Every node computes the same order, so one node
// claims at once and the others only if its Claim has not committed by
// their turn (it is down, or at capacity).
func (s *System) claimDelay(request string) time.Duration {
	if s.cfg.ClaimStagger == 0 {
		return 0
	}
	score := func(node string) uint64 {
		h := sha256.Sum256([]byte(request + "\x00" + node))
		return binary.BigEndian.Uint64(h[:8])
	}
	mine, rank := score(s.self), 0
	for _, m := range s.cfg.Cluster.Members() {
		if m.ID != s.self && score(m.ID) < mine {
			rank++
		}
	}
	return time.Duration(rank) * s.cfg.ClaimStagger
}

// consider decides whether to claim a request.
func (p *poller) consider(ctx actor.Context, request string) {
	if p.claiming[request] {
		return
	}
	cl := p.sys.cfg.Cluster
	if info, ok := cl.Request(request); ok {
		switch {
		case info.Status == cluster.StatusCompleted:
			p.forget(request)
			return
		case info.Status == cluster.StatusClaimed && info.Owner == p.sys.self:
			p.forget(request)
			ctx.Send(ctx.Parent(), &ensureSession{request: request, user: p.user.key()})
			return
		case info.Status == cluster.StatusClaimed:
			p.forget(request) // another node won it
			return
		}
	}
	switch passed, seen := p.stagger[request]; {
	case !seen:
		if d := p.sys.claimDelay(request); d > 0 {
			p.stagger[request] = false
			p.sys.later(d, ctx.Self(), &staggered{request: request})
			return
		}
		p.stagger[request] = true
	case !passed:
		return // its stagger runs
	}
	if !p.down.IsZero() {
		// Left for up, once the stream works again.
		if _, ok := p.waiting[request]; !ok {
			p.waiting[request] = 0
		}
		return
	}
	if !p.sys.hasCapacity() {
		if _, ok := p.waiting[request]; !ok {
			p.waiting[request] = 0
		}
		p.retryLater(ctx)
		return
	}
	p.claiming[request] = true
	cl, clock, self, root, user, timeout := p.sys.cfg.Cluster, p.sys.cfg.Clock, ctx.Self(), p.sys.root, p.user.key(), p.sys.cfg.CallTimeout
	p.sys.goTracked(func(sctx context.Context) {
		cctx, cancel := context.WithTimeout(sctx, timeout)
		defer cancel()
		t0 := clock.Now()
		err := cl.Claim(cctx, request, user)
		root.Send(self, &claimDone{request: request, err: err, took: clock.Now().Sub(t0)})
	})
}

func (p *poller) claimed(ctx actor.Context, m *claimDone) {
	delete(p.claiming, m.request)
	switch {
	case m.err == nil:
		p.forget(m.request)
		p.sys.metrics.stage(stageClaimCommit, m.took)
		ctx.Send(ctx.Parent(), &ensureSession{request: m.request, user: p.user.key()})
	case errors.Is(m.err, cluster.ErrClaimed), errors.Is(m.err, cluster.ErrCompleted):
		p.forget(m.request) // the losers drop R
	default:
		// No leader, a timeout, or an uncertain outcome: consider reads the
		// FSM first, so a claim that did commit is not proposed again.
		n := p.waiting[m.request] + 1
		if n > p.sys.cfg.ClaimRetries {
			p.forget(m.request)
			p.sys.log.Error("giving up claiming a request", "user", p.user.ID, "request", m.request, "err", m.err)
			return
		}
		p.waiting[m.request] = n
		p.sys.log.Warn("claim undecided, retrying", "user", p.user.ID, "request", m.request, "attempt", n, "err", m.err)
		p.retryLater(ctx)
	}
}

func (p *poller) retryLater(ctx actor.Context) {
	if !p.retrying {
		p.retrying = true
		p.sys.later(p.sys.cfg.RetryDelay, ctx.Self(), &claimRetry{})
	}
}

// noWatchdog is the watchdog of a stream without heartbeats.
type noWatchdog struct{}

func (noWatchdog) Stop() bool { return false }
