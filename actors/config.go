package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol/mpc"
)

// Config configures a System. Start from DefaultConfig.
type Config struct {
	// Cluster is the node's raft cluster. Required.
	Cluster Cluster
	// Cipher opens key records and seals presignatures. Required.
	Cipher Cipher
	// Engine runs the node's side of MPC sessions. Required.
	Engine *mpc.Engine
	// Clock times stages, backoff and refills; Config.Clock is a
	// clock.Clock. Default clock.Real().
	Clock clock.Clock
	// Logger receives the actors' logs (and protoactor's, at warn and
	// above). Default: discard.
	Logger *slog.Logger
	// Metrics receives the actors' measurements. Default: collectors
	// that are registered nowhere.
	Metrics *Metrics

	// MaxSessions is the node's session capacity: a Poller does not claim
	// a request while this many Sessions run, so load balances itself
	// across the cluster.
	MaxSessions int
	// PresignWorkers bounds the background presign (offline MPC) jobs, the
	// PresignPools' refills, that run at once: CPU-heavy, seconds each.
	// DESIGN: 1 on 2 cores.
	PresignWorkers int
	// SlowPathWorkers bounds the presigns that Sessions which found their
	// pool empty run on the spot at once (the slow path). They never share
	// a slot with a refill, so a Session never queues behind one; a
	// Session waiting for a slot takes a presignature that enters the pool
	// meanwhile instead.
	SlowPathWorkers int
	// OnlineWorkers bounds the online rounds that run at once (about a
	// millisecond of CPU each, plus the round trip to the workspace).
	OnlineWorkers int
	// WorkerQueue bounds the jobs waiting for each worker pool; a full
	// queue makes the submitter retry later.
	WorkerQueue int

	// Pool configures every PresignPool.
	Pool PoolConfig
	// Sessions supervises the Session actors.
	Sessions SupervisorConfig
	// Services supervises the Pollers, Callbacks and PresignPools.
	Services SupervisorConfig

	// PollBackoffMin and PollBackoffMax bound the Poller's reconnect delay,
	// which doubles after each broken stream.
	PollBackoffMin time.Duration
	PollBackoffMax time.Duration
	// PollHeartbeat is how often the Poller asks the workspace for a
	// heartbeat on a quiet poll stream; a stream with no event for three
	// intervals counts as broken (a dead link looks like a quiet stream).
	// 0 asks for none, and only a stream that ends counts as broken.
	PollHeartbeat time.Duration
	// WorkspaceTimeout is how long a user's poll stream may stay broken
	// before this node hands back its unfinished requests of the user (see
	// cluster.HandBack), for a node that reaches the workspace to finish.
	// A node claims nothing of the user's meanwhile.
	WorkspaceTimeout time.Duration
	// ClaimStagger spreads the claims of a new request over the cluster:
	// each node ranks the members by a hash of the request and its own id
	// and waits its rank times ClaimStagger before claiming, unless another
	// node's Claim has committed meanwhile. The preferred node claims at
	// once, so load spreads evenly and losing Claims rarely enter the log.
	ClaimStagger time.Duration
	// ResyncInterval is how often the coordinator re-reads the FSM for
	// requests this node owns without a Session and requests released but
	// unclaimed, so that a dropped event or a long leaderless spell strands
	// nothing until a restart.
	ResyncInterval time.Duration
	// ClaimRetries is how many times a Poller retries a Claim whose outcome
	// was neither a win nor a loss (no leader, timeout, uncertain and still
	// unclaimed), RetryDelay apart.
	ClaimRetries int
	// RetryDelay is the delay before retrying a failed workspace call or
	// proposal inside a Session, a failed background presign, and a
	// Poller's claim. Consecutive failures double it, up to MaxRetryDelay.
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
	// StepRetries is how many times a Session retries one failed step
	// (a workspace call or proposal) before it fails the request.
	StepRetries int
	// CallTimeout bounds each workspace call and each proposal.
	CallTimeout time.Duration
	// MPCTimeout bounds one relayed MPC session (presign or online round).
	MPCTimeout time.Duration
	// OnlineAttempts is how many presignatures a digest may spend on failed
	// online rounds before the request fails.
	OnlineAttempts int

	// OnHalt, when set, is called once, off any mailbox, when the System
	// halts because an invariant broke (see InvariantError), with the
	// reason. The node reports it on /v1/health.
	OnHalt func(reason string)

	// FaultHook, when set, is called inside the Session's Receive at every
	// Stage, with the request id. A panic in it crashes the Session, which
	// its supervisor restarts. For tests only.
	FaultHook func(request string, stage Stage)
	// RefillHook, when set, is called on the presign worker at the start
	// of every background presign job (a PresignPool's refill), with the
	// job's context and the key, before the MPC work. It may block: the job
	// holds its worker meanwhile. For tests only.
	RefillHook func(ctx context.Context, key string)
}

// PoolConfig configures the PresignPools.
type PoolConfig struct {
	// MinDepth and MaxDepth clamp the target depth of a key's pool.
	// MaxDepth 0 turns refilling off.
	MinDepth int
	MaxDepth int
	// RefillInterval is how often a pool re-checks its depth besides the
	// cluster's events.
	RefillInterval time.Duration
	// Alpha is the weight of the newest sample in the EWMAs of the take rate
	// and the refill latency, in (0, 1].
	Alpha float64
	// InitialRefillLatency seeds the refill-latency EWMA before the first
	// presign finishes.
	InitialRefillLatency time.Duration
	// Headroom multiplies the forecast (takes/s x refill latency), to
	// absorb bursts.
	Headroom float64
}

// SupervisorConfig is a supervision strategy: a failing child is restarted
// after a backoff (Backoff, doubling up to MaxBackoff), stopped once it
// failed more than MaxRestarts times within Window, and a failure that
// signals a broken invariant (*InvariantError) halts the System.
type SupervisorConfig struct {
	MaxRestarts int
	Window      time.Duration
	Backoff     time.Duration
	MaxBackoff  time.Duration
}

// DefaultConfig returns a Config with the defaults of every field but
// Cluster, Cipher and Engine.
func DefaultConfig() Config {
	return Config{
		Clock:           clock.Real(),
		MaxSessions:     256,
		PresignWorkers:  1,
		SlowPathWorkers: 2,
		OnlineWorkers:   8,
		WorkerQueue:     1024,
		Pool: PoolConfig{
			MinDepth:             2,
			MaxDepth:             32,
			RefillInterval:       5 * time.Second,
			Alpha:                0.2,
			InitialRefillLatency: 3 * time.Second,
			Headroom:             2,
		},
		Sessions:         SupervisorConfig{MaxRestarts: 3, Window: time.Minute, Backoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second},
		Services:         SupervisorConfig{MaxRestarts: 10, Window: time.Minute, Backoff: 200 * time.Millisecond, MaxBackoff: 30 * time.Second},
		PollBackoffMin:   100 * time.Millisecond,
		PollBackoffMax:   10 * time.Second,
		PollHeartbeat:    time.Second,
		WorkspaceTimeout: 3 * time.Second,
		ClaimRetries:     5,
		ClaimStagger:     50 * time.Millisecond,
		ResyncInterval:   5 * time.Second,
		RetryDelay:       500 * time.Millisecond,
		MaxRetryDelay:    30 * time.Second,
		StepRetries:      5,
		CallTimeout:      30 * time.Second,
		MPCTimeout:       2 * time.Minute,
		OnlineAttempts:   3,
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Cluster == nil {
		add("Cluster is required")
	}
	if c.Cipher == nil {
		add("Cipher is required")
	}
	if c.Engine == nil {
		add("Engine is required")
	}
	if c.Clock == nil {
		add("Clock is required")
	}
	if c.MaxSessions < 1 {
		add("MaxSessions must be at least 1, not %d", c.MaxSessions)
	}
	if c.PresignWorkers < 1 || c.SlowPathWorkers < 1 || c.OnlineWorkers < 1 {
		add("PresignWorkers, SlowPathWorkers and OnlineWorkers must be at least 1")
	}
	if c.WorkerQueue < 1 {
		add("WorkerQueue must be at least 1")
	}
	p := c.Pool
	if p.MinDepth < 0 || p.MaxDepth < 0 || p.MinDepth > p.MaxDepth {
		add("Pool depths need 0 <= MinDepth <= MaxDepth, not %d and %d", p.MinDepth, p.MaxDepth)
	}
	if p.RefillInterval <= 0 {
		add("Pool.RefillInterval must be positive")
	}
	if p.Alpha <= 0 || p.Alpha > 1 {
		add("Pool.Alpha must be in (0, 1], not %v", p.Alpha)
	}
	if p.InitialRefillLatency <= 0 {
		add("Pool.InitialRefillLatency must be positive")
	}
	if p.Headroom < 1 {
		add("Pool.Headroom must be at least 1, not %v", p.Headroom)
	}
	for name, s := range map[string]SupervisorConfig{"Sessions": c.Sessions, "Services": c.Services} {
		if err := s.validate(); err != nil {
			add("%s: %w", name, err)
		}
	}
	if c.PollBackoffMin <= 0 || c.PollBackoffMax < c.PollBackoffMin {
		add("poll backoff needs 0 < PollBackoffMin <= PollBackoffMax")
	}
	if c.ClaimStagger < 0 || c.ResyncInterval <= 0 {
		add("ClaimStagger must not be negative and ResyncInterval must be positive")
	}
	if c.ClaimRetries < 0 || c.StepRetries < 0 {
		add("ClaimRetries and StepRetries must not be negative")
	}
	if c.RetryDelay <= 0 || c.CallTimeout <= 0 || c.MPCTimeout <= 0 {
		add("RetryDelay, CallTimeout and MPCTimeout must be positive")
	}
	if (c.PollHeartbeat != 0 && c.PollHeartbeat < 100*time.Millisecond) || c.WorkspaceTimeout <= 0 {
		add("PollHeartbeat must be 0 or at least 100ms, and WorkspaceTimeout positive")
	}
	if c.MaxRetryDelay < c.RetryDelay {
		add("MaxRetryDelay must be at least RetryDelay")
	}
	if c.OnlineAttempts < 1 {
		add("OnlineAttempts must be at least 1")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func (s SupervisorConfig) validate() error {
	var errs []error
	if s.MaxRestarts < 0 {
		errs = append(errs, fmt.Errorf("MaxRestarts must not be negative, not %d", s.MaxRestarts))
	}
	if s.Window <= 0 {
		errs = append(errs, errors.New("the window must be positive"))
	}
	if s.Backoff < 0 || s.MaxBackoff < s.Backoff {
		errs = append(errs, errors.New("need 0 <= Backoff <= MaxBackoff"))
	}
	return errors.Join(errs...)
}
