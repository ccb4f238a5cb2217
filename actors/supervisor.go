package actors

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/coterie-mpc/coterie/clock"
)

// InvariantError is the panic value of an actor that found a safety
// invariant broken (a presignature reserved for another request, say).
// Supervisors never restart a child over it: the System halts (it stops
// claiming and signing, System.Halted reports why, Config.OnHalt is
// called) and the child is stopped.
type InvariantError struct {
	// What describes the broken invariant; it never holds a secret.
	What string
}

// Error implements error.
func (e *InvariantError) Error() string { return "actors: invariant broken: " + e.What }

// exhaustedAction is what a strategy does with a child that failed more
// than MaxRestarts times within Window.
type exhaustedAction int

const (
	// exhaustedStop stops the child; its parent sees it terminate and
	// handles the loss (a Session's request fails with a reason).
	exhaustedStop exhaustedAction = iota + 1
	// exhaustedEscalate hands the failure to the parent's own supervisor.
	exhaustedEscalate
)

func (a exhaustedAction) String() string {
	switch a {
	case exhaustedStop:
		return "stop"
	case exhaustedEscalate:
		return "escalate"
	default:
		return fmt.Sprintf("exhausted-%d", int(a))
	}
}

// strategy is the actors' supervision strategy, a one-for-one strategy
// with the parts protoactor's OneForOne lacks: the restart waits a backoff
// on the injected clock (doubling per failure within the window), and the
// failure window is timed on that clock too.
//
//   - *InvariantError: halt the System and stop the child, at once.
//   - any other panic: restart after the backoff, unless the child failed
//     more than MaxRestarts times within Window: then stop or escalate,
//     as the strategy says.
type strategy struct {
	name      string
	cfg       SupervisorConfig
	exhausted exhaustedAction
	clock     clock.Clock
	log       *slog.Logger
	metrics   *Metrics
	// halt stops the node's signing when an invariant broke.
	halt func(*InvariantError)

	mu       sync.Mutex
	failures map[string][]time.Time // by child PID id
}

var _ actor.SupervisorStrategy = (*strategy)(nil)

func newStrategy(name string, cfg SupervisorConfig, exhausted exhaustedAction, clk clock.Clock, log *slog.Logger, m *Metrics, halt func(*InvariantError)) *strategy {
	return &strategy{name: name, cfg: cfg, exhausted: exhausted, clock: clk, log: log, metrics: m, halt: halt, failures: map[string][]time.Time{}}
}

// HandleFailure implements actor.SupervisorStrategy. protoactor calls it on
// the supervisor's mailbox; RestartChildren and StopChildren only send
// system messages, so calling them from a timer is safe.
func (s *strategy) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason, _ any) {
	if inv, ok := reason.(*InvariantError); ok {
		s.log.Error("actor found an invariant broken, halting signing", "supervisor", s.name, "child", child.Id, "what", inv.What)
		s.metrics.Failures.WithLabelValues("halt").Inc()
		s.halt(inv)
		sup.StopChildren(child)
		return
	}
	n := s.fail(child.Id)
	if n > s.cfg.MaxRestarts {
		s.forget(child.Id)
		s.log.Error("actor failed too often", "supervisor", s.name, "child", child.Id,
			"failures", n, "window", s.cfg.Window, "action", s.exhausted.String(), "reason", panicReason(reason))
		s.metrics.Failures.WithLabelValues(s.exhausted.String()).Inc()
		if s.exhausted == exhaustedEscalate {
			sup.EscalateFailure(reason, nil)
		} else {
			sup.StopChildren(child)
		}
		return
	}
	delay := s.backoff(n)
	s.log.Warn("actor crashed, restarting", "supervisor", s.name, "child", child.Id, "failures", n,
		"delay", delay, "reason", panicReason(reason))
	s.metrics.Failures.WithLabelValues("restart").Inc()
	if delay <= 0 {
		sup.RestartChildren(child)
		return
	}
	s.clock.AfterFunc(delay, func() { sup.RestartChildren(child) })
}

// fail records a failure of child now and returns its failures within the
// window. It also forgets every child whose failures have all left the
// window, so the table holds only recent failures, however many children
// crashed once and then finished.
func (s *strategy) fail(child string) int {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ts := range s.failures {
		kept := ts[:0]
		for _, t := range ts {
			if now.Sub(t) < s.cfg.Window {
				kept = append(kept, t)
			}
		}
		if len(kept) == 0 {
			delete(s.failures, id)
		} else {
			s.failures[id] = kept
		}
	}
	s.failures[child] = append(s.failures[child], now)
	return len(s.failures[child])
}

// tracked returns how many children have failures on record.
func (s *strategy) tracked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.failures)
}

// forget drops a child's failure history (it stopped).
func (s *strategy) forget(child string) {
	s.mu.Lock()
	delete(s.failures, child)
	s.mu.Unlock()
}

// backoff is the delay before the n-th restart within the window.
func (s *strategy) backoff(n int) time.Duration { return doubling(s.cfg.Backoff, s.cfg.MaxBackoff, n) }

// doubling is the n-th delay (from 1) of a backoff that starts at base and
// doubles up to limit.
func doubling(base, limit time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// panicReason renders a panic value for a log line. Actors never panic
// with secret material (STYLE: no secret in a panic).
func panicReason(r any) string {
	switch v := r.(type) {
	case error:
		return v.Error()
	case string:
		return v
	default:
		return fmt.Sprintf("%T", r)
	}
}
