package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/coterie-mpc/coterie/bench/launch"
	"github.com/coterie-mpc/coterie/bench/load"
	"github.com/coterie-mpc/coterie/bench/report"
	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol/mpc/mpcbench"
)

// ErrConfig is returned by Config.Validate and Run for a config that
// cannot run; the error lists every problem.
var ErrConfig = errors.New("harness: bad config")

// Config is one bench or drill.
type Config struct {
	// Launch is the cluster to start; its Logger is Logger. With Attach,
	// only its timeouts are used.
	Launch launch.Config
	// Attach, when set, runs a bench on a cluster that already runs
	// instead of starting one.
	Attach *Attach
	// Users is how many API users to pair.
	Users int
	// Callback runs the reference callback handler with load.Policy; the
	// load's retry and reject shares need it, and I5 is judged only with
	// it.
	Callback bool
	// Load is the workload; Run sets its Users and Stop.
	Load load.Config
	// BarePresigns is how many presignatures the library alone makes (and
	// online rounds it runs) to measure itself; 0 skips it.
	BarePresigns int
	// Rounds is how many fault rounds a drill runs, one Schedule entry
	// after another, cycling; 0 runs a bench.
	Rounds   int
	Schedule []Fault
	// Hold is how long a fault that is undone lasts: SIGSTOP, a
	// partition, a toxic.
	Hold time.Duration
	// Settle is the pause between a round's recovery and the next fault.
	Settle time.Duration
	// RoundTimeout bounds one round, fault to recovery.
	RoundTimeout time.Duration
	// FindMax, when set, searches the highest sustainable rate instead of
	// one load at Load.Rate.
	FindMax *FindMaxConfig
	// SampleEvery paces the pool depth samples.
	SampleEvery time.Duration
	// CollectTimeout bounds the collection and the check after the load.
	CollectTimeout time.Duration
	// Logger receives progress events; nil discards them.
	Logger *slog.Logger
	// Clock paces the samples and the rounds.
	Clock clock.Clock
}

// Attach names a running cluster (launch.Attach).
type Attach struct {
	// NodeConfigs are the nodes' config files.
	NodeConfigs []string
	// WorkspaceDir is the workspace simulator's data directory.
	WorkspaceDir string
	// CallbackLog is the log of the callback handler the nodes use, if
	// any; without it I5 is not judged. Retry and reject shares need it,
	// with the handler running load.Policy.
	CallbackLog string
}

// DefaultConfig returns a short bench of a three-node 2-of-2 cluster with
// the callback handler: one user, one request at a time for 30 s.
func DefaultConfig() Config {
	lc := launch.DefaultConfig()
	ld := load.DefaultConfig()
	return Config{
		Launch: lc, Users: 1, Callback: true, Load: ld, BarePresigns: 3,
		Schedule: DefaultSchedule(), Hold: 3 * time.Second, Settle: 2 * time.Second, RoundTimeout: 2 * time.Minute,
		SampleEvery: 250 * time.Millisecond, CollectTimeout: 3 * time.Minute, Clock: clock.Real(),
	}
}

// Validate reports every problem of c at once, wrapped in ErrConfig. It
// leaves the launch and load configs' own checks to their packages, which
// Run calls.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Users < 1 {
		bad("users is %d, want at least 1", c.Users)
	}
	switch handler := c.Callback && c.Attach == nil || c.Attach != nil && c.Attach.CallbackLog != ""; {
	case !handler && (c.Load.Retry > 0 || c.Load.Reject > 0):
		bad("retry and reject shares need the callback handler")
	case c.Attach != nil && c.Rounds > 0:
		bad("a drill injects faults into processes it started: it cannot attach")
	}
	if c.BarePresigns < 0 || c.BarePresigns > mpcbench.MaxPresigns {
		bad("bare presigns is %d, want 0 to %d", c.BarePresigns, mpcbench.MaxPresigns)
	}
	if c.Rounds < 0 {
		bad("rounds is %d, want 0 (a bench) or more", c.Rounds)
	}
	if c.Rounds > 0 {
		if len(c.Schedule) == 0 {
			bad("a drill needs a schedule")
		}
		for _, f := range c.Schedule {
			if err := f.Validate(c.Launch.Nodes); err != nil {
				bad("%v", err)
			}
		}
		if c.Hold <= 0 || c.Settle < 0 || c.RoundTimeout <= 0 {
			bad("hold %s, settle %s and round timeout %s must be positive", c.Hold, c.Settle, c.RoundTimeout)
		}
		if c.FindMax != nil {
			bad("a drill does not search the maximum rate")
		}
	}
	if c.FindMax != nil {
		if err := c.FindMax.validate(); err != nil {
			bad("%v", err)
		}
	}
	if c.SampleEvery <= 0 || c.CollectTimeout <= 0 {
		bad("sample interval %s and collect timeout %s must be positive", c.SampleEvery, c.CollectTimeout)
	}
	if c.Clock == nil {
		bad("clock is nil")
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}

// Run starts the cluster, runs the bench or drill, checks the invariants
// and stops the cluster. It returns the report whenever the cluster came
// up, also on an error or an interruption, so that the caller can write
// what was measured.
func Run(ctx context.Context, cfg Config) (*report.Run, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lc := cfg.Launch
	lc.Logger = log
	if cfg.Callback {
		lc.CallbackPolicy = load.Policy
	}
	kind := "bench"
	if cfg.Rounds > 0 {
		kind = "drill"
	}
	rep := &report.Run{Kind: kind, Setup: setup(cfg)}

	c, err := start(ctx, cfg, lc)
	if err != nil {
		return nil, err
	}
	defer c.Stop()
	cfg.Launch.Nodes, cfg.Users = len(c.Nodes), len(c.Users)
	rep.Setup = setup(cfg)
	s := &session{cfg: cfg, log: log, c: c, rep: rep}
	s.users = c.Users

	if cfg.BarePresigns > 0 {
		log.Info("measuring the library alone", "parties", lc.Quorum, "presigns", cfg.BarePresigns)
		if err := s.measureBare(ctx); err != nil {
			return nil, err
		}
	}
	err = s.drive(ctx)
	if err != nil {
		rep.Interrupted = err.Error()
	}
	// Collect and check with a context of their own: an interrupted run
	// still reports what it measured.
	if cerr := s.collect(context.WithoutCancel(ctx), ctx.Err() == nil); cerr != nil {
		log.Warn("collecting the run's records failed", "err", cerr)
		err = errors.Join(err, cerr)
		if rep.Interrupted == "" {
			rep.Interrupted = cerr.Error()
		}
	}
	return rep, err
}

// start starts the cluster and pairs cfg.Users users, or attaches to the
// running one and takes its users; then it waits for warm pools.
func start(ctx context.Context, cfg Config, lc launch.Config) (c *launch.Cluster, err error) {
	if a := cfg.Attach; a != nil {
		lc.Logger.Info("attaching to the cluster", "nodes", a.NodeConfigs, "workspace", a.WorkspaceDir)
		if c, err = launch.Attach(ctx, lc, a.NodeConfigs, a.WorkspaceDir, a.CallbackLog); err != nil {
			return nil, err
		}
	} else {
		lc.Logger.Info("starting the cluster", "nodes", lc.Nodes, "dir", lc.Dir)
		if c, err = launch.Start(ctx, lc); err != nil {
			return nil, err
		}
		if _, err := c.Pair(ctx, cfg.Users); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.WaitWarm(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func setup(cfg Config) report.Setup {
	s := report.Setup{
		Nodes: cfg.Launch.Nodes, Cosigners: cfg.Launch.Cosigners, Quorum: cfg.Launch.Quorum, Users: cfg.Users,
		Rate: cfg.Load.Rate, Duration: cfg.Load.Duration, MaxDigests: cfg.Load.MaxDigests,
		ConfigChanges: cfg.Load.ConfigChanges, Retry: cfg.Load.Retry, Reject: cfg.Load.Reject, Rounds: cfg.Rounds,
	}
	if s.Rate == 0 {
		s.Concurrency = cfg.Load.Concurrency
	}
	if cfg.FindMax != nil {
		// The steps say their rates and lengths.
		s.Rate, s.Concurrency, s.Duration = 0, 0, 0
	}
	if cfg.Rounds > 0 {
		s.Duration = 0 // the load lasts as long as the rounds
	}
	return s
}

// measureBare runs the library alone, every party in this process.
func (s *session) measureBare(ctx context.Context) error {
	mc := mpcbench.DefaultConfig()
	mc.Parties, mc.Presigns = s.cfg.Launch.Quorum, s.cfg.BarePresigns
	res, err := mpcbench.Measure(ctx, mc)
	if err != nil {
		return fmt.Errorf("harness: the library alone: %w", err)
	}
	s.rep.Bare = report.Bare{Online: res.OnlineP50(), Presign: res.PresignP50(), PresignCPU: res.PresignCPU}
	return nil
}

// cores is how many CPUs the machine's processes share: the ceiling of
// presignatures per second is cores / the CPU seconds of one.
func cores() int { return runtime.NumCPU() }

// sleep waits d on the session's clock, or until ctx ends.
func (s *session) sleep(ctx context.Context, d time.Duration) error {
	return clock.Sleep(ctx, s.cfg.Clock, d)
}
