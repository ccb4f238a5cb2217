package actors

import (
	"context"
	"math"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Messages of the PresignPool.
type (
	// poolCheck re-reads the depth and refills if needed.
	poolCheck struct{}
	// poolTick is the periodic check.
	poolTick struct{}
	// poolTake says a presignature of the key was reserved.
	poolTake struct{}
	// presignJobDone is the end of one background presign.
	presignJobDone struct {
		took time.Duration
		err  error
	}
)

// presignPool is PresignPool(key): it keeps the key's pool of available
// presignatures (as the FSM counts them) at a target depth, refilling in the
// background on the bounded presign worker pool; the MPC work never runs in
// Receive. Each refill runs presign with the cloud co-signers through the
// workspace relay, seals the node's share under the keyring and proposes
// PresignaturesAdded.
//
// The target is a demand forecast: an EWMA of the take rate (takes/s, from
// the cluster's Reserve events) times an EWMA of the refill latency, times
// Headroom, clamped to [MinDepth, MaxDepth]. So the pool holds about what
// is taken while one refill runs.
//
// The pool lives in the FSM, so any node can use any presignature, and
// every member refills its share of the deficit (share); a lone node, or
// one in a cluster without a member table, leaves refilling to the leader.
//
// A failed refill (the workspace down, say) backs off on the Clock:
// RetryDelay doubling per consecutive failure up to MaxRetryDelay, during
// which the pool starts no refill, so a dead peer costs one attempt and
// one warning per backoff, not a busy loop.
//
// Supervision: Config.Services.
type presignPool struct {
	sys      *System
	user     *userState
	key      string
	rate     float64 // takes per second (EWMA)
	lastTake time.Time
	latency  time.Duration // refill latency (EWMA)
	inflight int
	// failures counts consecutive failed refills; no refill starts before
	// retryAt.
	failures int
	retryAt  time.Time
}

func newPresignPool(s *System, u *userState) *presignPool {
	return &presignPool{sys: s, user: u, key: u.ShareRecordID, latency: s.cfg.Pool.InitialRefillLatency}
}

// Receive implements actor.Actor.
func (p *presignPool) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		p.check(ctx)
		p.sys.later(p.sys.cfg.Pool.RefillInterval, ctx.Self(), &poolTick{})
	case *actor.Restarting, *actor.Stopping, *actor.Stopped:
	case *poolTick:
		p.check(ctx)
		p.sys.later(p.sys.cfg.Pool.RefillInterval, ctx.Self(), &poolTick{})
	case *poolCheck:
		p.check(ctx)
	case *poolTake:
		p.take(p.sys.cfg.Clock.Now())
		p.check(ctx)
	case *presignJobDone:
		p.inflight = max(0, p.inflight-1) // a restart forgets jobs still running
		if m.err != nil {
			delay := p.failed()
			p.sys.metrics.Presigns.WithLabelValues("error").Inc()
			p.sys.log.Warn("background presign failed, backing off", "key", p.key, "failures", p.failures, "retry_in", delay, "err", m.err)
			p.sys.later(delay, ctx.Self(), &poolCheck{})
		} else {
			p.failures, p.retryAt = 0, time.Time{}
			p.sys.metrics.Presigns.WithLabelValues("ok").Inc()
			a := p.sys.cfg.Pool.Alpha
			p.latency = time.Duration(a*float64(m.took) + (1-a)*float64(p.latency))
		}
		p.check(ctx)
	}
}

// share is how many refills of a deficit this node runs at once: its part
// of the deficit, split evenly over the cluster's members, so that the
// nodes share the CPU work and do not fill the pool several times over.
// Without a member table (a lone node) the leader refills it all.
func (p *presignPool) share(deficit int) int {
	if deficit <= 0 {
		return 0
	}
	n := len(p.sys.cfg.Cluster.Members())
	if n <= 1 {
		if p.sys.cfg.Cluster.IsLeader() {
			return deficit
		}
		return 0
	}
	return (deficit + n - 1) / n
}

// failed records a failed refill and returns the backoff before the next.
func (p *presignPool) failed() time.Duration {
	p.failures++
	delay := p.sys.retryDelay(p.failures)
	p.retryAt = p.sys.cfg.Clock.Now().Add(delay)
	return delay
}

// mayRefill reports whether the backoff after failed refills has passed.
func (p *presignPool) mayRefill() bool { return !p.sys.cfg.Clock.Now().Before(p.retryAt) }

// take feeds one take at now into the rate EWMA.
func (p *presignPool) take(now time.Time) {
	if !p.lastTake.IsZero() {
		gap := now.Sub(p.lastTake).Seconds()
		if gap < 1e-3 {
			gap = 1e-3 // a burst: count it as at most 1000/s
		}
		a := p.sys.cfg.Pool.Alpha
		p.rate = a/gap + (1-a)*p.rate
	}
	p.lastTake = now
}

// target is the depth the pool refills to.
func (p *presignPool) target(now time.Time) int {
	rate := p.rate
	if !p.lastTake.IsZero() {
		// Decay while nothing is taken: the rate cannot exceed one take
		// per the time since the last.
		if idle := now.Sub(p.lastTake).Seconds(); idle > 0 {
			rate = math.Min(rate, 1/idle)
		}
	}
	return forecast(rate, p.latency, p.sys.cfg.Pool)
}

// forecast is the target depth for a take rate and a refill latency.
func forecast(rate float64, latency time.Duration, c PoolConfig) int {
	n := int(math.Ceil(rate * latency.Seconds() * c.Headroom))
	return max(c.MinDepth, min(n, c.MaxDepth))
}

func (p *presignPool) check(ctx actor.Context) {
	now := p.sys.cfg.Clock.Now()
	depth := p.sys.cfg.Cluster.PoolDepth(p.key)
	target := p.target(now)
	share := p.share(target - depth)
	if share > 0 && p.sys.cfg.Pool.MaxDepth > 0 && p.mayRefill() {
		self, root, u, clock, key, hook := ctx.Self(), p.sys.root, p.user, p.sys.cfg.Clock, p.key, p.sys.cfg.RefillHook
		for depth+p.inflight < target && p.inflight < share {
			err := p.sys.presign.Submit(func(c context.Context) {
				if hook != nil {
					hook(c, key)
				}
				t0 := clock.Now()
				_, err := p.sys.presignOne(c, u, "")
				root.Send(self, &presignJobDone{took: clock.Now().Sub(t0), err: err})
			})
			if err != nil {
				break // the pool is busy; the next check tries again
			}
			p.inflight++
		}
	}
	p.sys.setPool(PoolStatus{Key: p.key, Depth: depth, Target: target, InFlight: p.inflight,
		Refilling: p.inflight > 0, Failures: p.failures,
		TakesPerSecond: p.rate, RefillSeconds: p.latency.Seconds()})
}
