package actors

import (
	"context"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
)

// Messages of the Sessions supervisor.
type (
	// startSession spawns Session(request) unless it runs already.
	startSession struct {
		request  string
		user     *userState
		callback *actor.PID
	}
	// sessionDone is a Session's last word before it stops itself.
	sessionDone struct {
		request string
		// lost says another node may finish the request; no report here.
		lost bool
	}
)

// sessions supervises the Session actors, one per request this node owns:
// spawning is idempotent (one Session per request per node), a crashed
// Session restarts after a backoff and resumes from the recorded state, and
// a Session that crashed more than Config.Sessions.MaxRestarts times within
// the window is stopped and its request failed with a reason (I3).
type sessions struct {
	sys      *System
	byReq    map[string]*sessionEntry
	byPID    map[string]string // PID id -> request
	draining bool
	stopping bool
}

type sessionEntry struct {
	pid      *actor.PID
	user     *userState
	callback *actor.PID
	done     bool
	lost     bool
}

func newSessions(s *System) *sessions {
	return &sessions{sys: s, byReq: map[string]*sessionEntry{}, byPID: map[string]string{}}
}

// Receive implements actor.Actor.
func (s *sessions) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started, *actor.Stopped:
	case *actor.Restarting, *actor.Stopping:
		// The children stop with us (Stop, or a restart of the
		// coordinator); their requests resume at the next start, so
		// their Terminated must not fail them.
		s.stopping = true
	case *drain:
		s.draining = true
	case *startSession:
		if _, ok := s.byReq[m.request]; ok || s.draining {
			return
		}
		s.spawn(ctx, m)
	case *sessionDone:
		if e, ok := s.byReq[m.request]; ok && !e.done {
			e.done, e.lost = true, m.lost
			ctx.Stop(e.pid)
		}
	case *actor.Terminated:
		r, ok := s.byPID[m.Who.Id]
		if !ok {
			return
		}
		e := s.byReq[r]
		delete(s.byPID, m.Who.Id)
		delete(s.byReq, r)
		s.sys.sessionEnded(r)
		if _, halted := s.sys.Halted(); halted || s.stopping || s.sys.ctx.Err() != nil {
			// A halted node leaves its requests claimed for an operator.
			return
		}
		switch {
		case !e.done:
			// Its supervisor gave up on it: the request fails here so
			// that it still reaches a terminal outcome (I3).
			s.sys.failAbandoned(r, e.user)
		case e.lost && !s.draining:
			// This node may have claimed the request again while the
			// Session that lost it was ending (its start was then
			// ignored as a duplicate): start a fresh one if so.
			if info, ok := s.sys.cfg.Cluster.Request(r); ok && info.Status == cluster.StatusClaimed && info.Owner == s.sys.self {
				s.spawn(ctx, &startSession{request: r, user: e.user, callback: e.callback})
			}
		}
	}
}

func (s *sessions) spawn(ctx actor.Context, m *startSession) {
	sh := &sessionShared{request: m.request, user: m.user, callback: m.callback}
	pid := ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return newSession(s.sys, sh) }))
	s.byReq[m.request] = &sessionEntry{pid: pid, user: m.user, callback: m.callback}
	s.byPID[pid.Id] = m.request
	s.sys.sessionStarted()
}

// failAbandoned reports a request whose Session crashed too often as
// failed, to the workspace and in the FSM.
func (s *System) failAbandoned(request string, u *userState) {
	reason := "session crashed repeatedly"
	s.log.Error("failing request after repeated session crashes", "request", request, "user", u.ID)
	s.goTracked(func(ctx context.Context) {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
		defer cancel()
		if info, ok := s.cfg.Cluster.Request(request); ok && info.Status == cluster.StatusCompleted {
			return
		}
		if _, err := u.Workspace.FailRequest(cctx, &protocol.WsFailRequest{RequestId: request, Reason: reason}); err != nil {
			s.log.Warn("workspace did not take the failure", "request", request, "err", err)
		}
		err := s.cfg.Cluster.Complete(cctx, request, cluster.OutcomeFailed, reason)
		if err != nil {
			s.log.Error("could not record the failure", "request", request, "err", fmt.Errorf("complete: %w", err))
			return
		}
		s.metrics.Requests.WithLabelValues(cluster.OutcomeFailed.String()).Inc()
	})
}
