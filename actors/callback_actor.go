package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/clock"
)

// Messages of the Callback actor.
type (
	// askCallback asks for the handler's final decision about a request;
	// the answer goes to replyTo as a *callbackAnswer. Asking again for a
	// request already pending only updates replyTo (a restarted Session).
	askCallback struct {
		request string
		req     callback.Request
		replyTo *actor.PID
	}
	// callbackAnswer is the final answer: a final Decision (APPROVE,
	// REJECT, IGNORE) with a nil error, or an error and a zero Decision.
	// An error never approves (I5).
	callbackAnswer struct {
		request  string
		decision callback.Decision
		err      error
	}
	// attemptDone is the outcome of one Ask.
	attemptDone struct {
		request  string
		gen      int
		decision callback.Decision
		err      error
		took     time.Duration
	}
	// retryDue starts the next attempt after the backoff.
	retryDue struct {
		request string
		gen     int
	}
)

// errCallbackRestarted is the answer to the asks a Callback actor had
// pending when it crashed; the Session asks again.
var errCallbackRestarted = errors.New("actors: callback actor restarted")

// callbackActor is Callback(U): it asks one API user's callback handler
// about requests for the Sessions. Receive never blocks: each attempt runs
// on its own goroutine and reports back with a message, and the backoff
// between attempts (after RETRY or a retryable failure, within User.Retry's
// budget) is a timer on the injected Clock. Only a final answer goes back
// to the Session; a budget spent without one is an error, never an approval.
//
// Supervision: Config.Services. On a restart it answers every pending ask
// with errCallbackRestarted so that no Session waits forever.
type callbackActor struct {
	sys     *System
	user    *userState
	retry   callback.Backoff
	pending map[string]*pendingAsk
	gen     int
}

type pendingAsk struct {
	req      callback.Request
	replyTo  *actor.PID
	attempts int
	gen      int
	timer    clock.Timer
}

func newCallbackActor(s *System, u *userState) *callbackActor {
	r := u.Retry
	if r == (callback.Backoff{}) {
		r = callback.DefaultBackoff()
	}
	return &callbackActor{sys: s, user: u, retry: r, pending: map[string]*pendingAsk{}}
}

// Receive implements actor.Actor.
func (c *callbackActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
	case *actor.Restarting, *actor.Stopping:
		for r, p := range c.pending {
			if p.timer != nil {
				p.timer.Stop()
			}
			ctx.Send(p.replyTo, &callbackAnswer{request: r, err: errCallbackRestarted})
		}
		c.pending = map[string]*pendingAsk{}
	case *askCallback:
		if p, ok := c.pending[m.request]; ok {
			p.replyTo = m.replyTo
			return
		}
		c.gen++
		p := &pendingAsk{req: m.req, replyTo: m.replyTo, gen: c.gen}
		c.pending[m.request] = p
		c.attempt(ctx, m.request, p)
	case *retryDue:
		if p, ok := c.pending[m.request]; ok && p.gen == m.gen {
			p.timer = nil
			c.attempt(ctx, m.request, p)
		}
	case *attemptDone:
		p, ok := c.pending[m.request]
		if !ok || p.gen != m.gen {
			return
		}
		c.done(ctx, m, p)
	}
}

func (c *callbackActor) attempt(ctx actor.Context, request string, p *pendingAsk) {
	p.attempts++
	d, req, gen, self, root, clock := c.user.Decider, p.req, p.gen, ctx.Self(), c.sys.root, c.sys.cfg.Clock
	c.sys.goTracked(func(sctx context.Context) {
		t0 := clock.Now()
		dec, err := d.Ask(sctx, req)
		root.Send(self, &attemptDone{request: request, gen: gen, decision: dec, err: err, took: clock.Now().Sub(t0)})
	})
}

func (c *callbackActor) done(ctx actor.Context, m *attemptDone, p *pendingAsk) {
	c.sys.metrics.CallbackSeconds.Observe(m.took.Seconds())
	c.sys.metrics.CallbackOutcomes.WithLabelValues(outcomeLabel(m.decision, m.err)).Inc()
	final := func(ans *callbackAnswer) {
		delete(c.pending, m.request)
		ctx.Send(p.replyTo, ans)
	}
	switch {
	case m.err == nil && m.decision.Action.Final():
		final(&callbackAnswer{request: m.request, decision: m.decision})
		return
	case m.err != nil && !callback.Retryable(m.err):
		final(&callbackAnswer{request: m.request, err: m.err})
		return
	}
	// RETRY, or a transient failure: back off within the budget.
	last := m.err
	if last == nil {
		last = callback.ErrRetryRequested
		if reason := m.decision.RejectionReason; reason != "" {
			last = fmt.Errorf("%w: %s", callback.ErrRetryRequested, reason)
		}
	}
	delay, ok := c.retry.Next(p.attempts)
	if !ok {
		c.sys.log.Warn("callback retry budget exhausted", "user", c.user.ID, "request", m.request, "attempts", p.attempts, "err", last)
		final(&callbackAnswer{request: m.request, err: fmt.Errorf("%w after %d attempts: %w", callback.ErrBudgetExhausted, p.attempts, last)})
		return
	}
	c.logRetry(m, p.attempts, delay)
	self, gen, root, request := ctx.Self(), p.gen, c.sys.root, m.request
	p.timer = c.sys.cfg.Clock.AfterFunc(delay, func() {
		if c.sys.ctx.Err() == nil {
			root.Send(self, &retryDue{request: request, gen: gen})
		}
	})
}

// logRetry says why a request waits for another attempt, with one message
// per cause, and when that attempt is due: until then a request answered
// RETRY sits in the workspace as delivered, for the whole retry interval
// (3 minutes by default).
func (c *callbackActor) logRetry(m *attemptDone, attempt int, delay time.Duration) {
	args := []any{"user", c.user.ID, "request", m.request, "attempt", attempt, "max_attempts", c.retry.MaxAttempts,
		"retry_in", delay, "next_attempt", c.sys.cfg.Clock.Now().Add(delay)}
	var status *callback.StatusError
	switch {
	case m.err == nil && m.decision.RejectionReason != "":
		c.sys.log.Info("callback handler answered retry", append(args, "reason", m.decision.RejectionReason)...)
	case m.err == nil:
		c.sys.log.Info("callback handler answered retry", args...)
	case errors.Is(m.err, callback.ErrTimeout):
		c.sys.log.Warn("callback handler did not answer in time", append(args, "err", m.err)...)
	case errors.Is(m.err, callback.ErrUnreachable):
		c.sys.log.Warn("callback handler unreachable", append(args, "err", m.err)...)
	case errors.As(m.err, &status) && status.Redirect():
		c.sys.log.Warn("callback handler answered a redirect, which is not followed", append(args, "status", status.Code)...)
	case errors.As(m.err, &status):
		c.sys.log.Warn("callback handler answered an http error", append(args, "status", status.Code)...)
	default: // any other retryable failure: an oversized answer
		c.sys.log.Warn("callback attempt failed", append(args, "err", m.err)...)
	}
}

func outcomeLabel(d callback.Decision, err error) string {
	switch {
	case err != nil:
		return "error"
	case d.Auto:
		return "auto"
	default:
		return d.Action.String()
	}
}
