package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/coterie-mpc/coterie/bench/harness"
	"github.com/coterie-mpc/coterie/bench/report"
)

// benchFlags are the flags `coterie bench` and `coterie drill` share.
type benchFlags struct {
	cfg      harness.Config
	noCB     bool
	out      string
	dir      string
	keep     bool
	verbose  bool
	findMax  bool
	fm       harness.FindMaxConfig
	schedule string
	faults   []string
	attach   harness.Attach
}

// addBenchFlags registers the shared flags on fs, with cfg's defaults.
func (f *benchFlags) addBenchFlags(fs *pflag.FlagSet, kind string) {
	c := &f.cfg
	fs.IntVar(&c.Launch.Nodes, "nodes", c.Launch.Nodes, "how many node processes (coterie node run) the cluster has")
	fs.IntVar(&c.Launch.Cosigners, "cosigners", c.Launch.Cosigners, "the workspace's cloud co-signers: 1 or 2")
	fs.IntVar(&c.Launch.Quorum, "quorum", c.Launch.Quorum, "how many parties sign, the cluster included: 2-of-2, 2-of-3 or 3-of-3")
	fs.IntVar(&c.Launch.PresignTarget, "pool", c.Launch.PresignTarget, "the presignature pool depth the cluster keeps per key")
	fs.DurationVar(&c.Launch.OwnerTimeout, "owner-timeout", c.Launch.OwnerTimeout, "the nodes' owner_timeout: how long a silent owner keeps its requests (at least 1s)")
	fs.IntVar(&c.Users, "users", c.Users, "how many API users to pair; the requests are spread over them")
	fs.Float64Var(&c.Load.Rate, "rate", c.Load.Rate, "open loop: submissions per second (0: closed loop, see --concurrency)")
	fs.IntVar(&c.Load.Concurrency, "concurrency", c.Load.Concurrency, "closed loop: requests in flight")
	fs.DurationVar(&c.Load.Duration, "duration", c.Load.Duration, "how long to submit requests"+map[string]string{"drill": " (a drill submits until its last round)"}[kind])
	fs.IntVar(&c.Load.MaxDigests, "max-digests", c.Load.MaxDigests, "the most digests one transaction carries (1 to 16), on varied derivation paths")
	fs.Float64Var(&c.Load.ConfigChanges, "config-changes", 0, "the share of requests that are config changes (0 to 1)")
	fs.Float64Var(&c.Load.Retry, "retry", 0, "the share of transactions the callback handler answers RETRY once (0 to 1)")
	fs.Float64Var(&c.Load.Reject, "reject", 0, "the share of transactions the callback handler rejects (0 to 1)")
	fs.BoolVar(&f.noCB, "no-callback", false, "run no callback handler: the nodes approve every request, and I5 is not checked")
	fs.IntVar(&c.BarePresigns, "bare-presigns", c.BarePresigns, "presignatures the library makes alone, in this process, for the ratios (0 skips it)")
	fs.Uint64Var(&c.Load.Seed, "seed", c.Load.Seed, "the seed of the request mix and of the drill's random choices")
	fs.StringVar(&f.out, "out", "", "the directory for the report: "+kind+".json and "+kind+".html (default: ./coterie-"+kind+"-TIME)")
	fs.StringVar(&f.dir, "dir", "", "the directory the cluster runs in (default: a new temporary directory, removed unless --keep)")
	fs.BoolVar(&f.keep, "keep", false, "keep the cluster's directory (configs, data, logs) after the run")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "log the run's steps to standard error")
}

func newBenchCmd() *cobra.Command {
	f := &benchFlags{cfg: harness.DefaultConfig(), fm: *harness.DefaultFindMax()}
	cmd := &cobra.Command{
		Use:   "bench [--rate R | --concurrency C] [--duration D] [--find-max] [flags]",
		Short: "Load-test a local cluster and report latency by stage, throughput and CPU per signature",
		Long: "bench starts, on loopback, a workspace simulator, the reference callback handler and a cluster of " +
			"`coterie node run` processes of this binary, each behind an in-process TCP proxy; pairs API users and " +
			"waits for warm presignature pools; measures the MPC library alone in this process (a bare presign and " +
			"online round, for the ratios); then submits a mix of requests, open loop (--rate) or closed loop " +
			"(--concurrency), for --duration. It reports the end-to-end latency (from the submission to the " +
			"workspace's verified signature, by the workspace's clock) and each stage as the nodes timed it, as HDR " +
			"histograms merged across nodes (p50, p90, p99, p99.9, max); throughput; outcomes and errors; the pool " +
			"depth over time; the CPU seconds every process spent per signature, counted until the pools refilled; " +
			"and the ratios to the library alone. --find-max raises the rate step by step until the p99 or the " +
			"backlog breaks its bound, and reports the highest sustainable rate beside this machine's presign " +
			"ceiling. At the end the invariant checker reads the workspace, every node's FSM and the callback " +
			"handler's log and judges I1, I2, I3, I5 and every signature. It prints a table, writes bench.json and a " +
			"self-contained bench.html, and exits 1 on any violation. Ctrl-C stops every process and still writes " +
			"what was measured. --attach benches a cluster that already runs instead (its node config files and " +
			"the workspace's data directory): it checks that every node serves as a voter and that API users are " +
			"paired, and touches nothing otherwise; it cannot read the processes' CPU time.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBench(cmd, f, "bench") },
	}
	f.addBenchFlags(cmd.Flags(), "bench")
	fl := cmd.Flags()
	fl.StringSliceVar(&f.attach.NodeConfigs, "attach", nil, "bench a cluster that already runs instead of starting one: its nodes' config files (comma-separated); needs --workspace-dir")
	fl.StringVar(&f.attach.WorkspaceDir, "workspace-dir", "", "with --attach: the workspace simulator's data directory")
	fl.StringVar(&f.attach.CallbackLog, "callback-log", "", "with --attach: the log of the callback handler the nodes use (coterie callback serve's standard error), for I5")
	fl.BoolVar(&f.findMax, "find-max", false, "search the highest sustainable open-loop rate instead of one load")
	fl.Float64Var(&f.fm.From, "find-max-from", f.fm.From, "the search's first rate, per second")
	fl.Float64Var(&f.fm.Factor, "find-max-factor", f.fm.Factor, "each step multiplies the rate by this")
	fl.IntVar(&f.fm.Steps, "find-max-steps", f.fm.Steps, "the most steps")
	fl.DurationVar(&f.fm.StepDuration, "find-max-step", f.fm.StepDuration, "how long each step submits")
	fl.DurationVar(&f.fm.MaxP99, "max-p99", f.fm.MaxP99, "a step holds if its end-to-end p99 stays within this")
	fl.IntVar(&f.fm.MaxBacklog, "max-backlog", f.fm.MaxBacklog, "and if it leaves at most this many requests open --max-p99 after its end")
	return cmd
}

func newDrillCmd() *cobra.Command {
	f := &benchFlags{cfg: harness.DefaultConfig()}
	f.cfg.Rounds = 3
	f.cfg.Load.Rate = 0.5
	cmd := &cobra.Command{
		Use:   "drill [--rounds N] [--faults F,F | --schedule FILE] [flags]",
		Short: "Rehearse failover: inject a fault per round under load, and check that nothing was lost",
		Long: "drill starts a local cluster as bench does and, under load, injects one fault per round for " +
			"--rounds rounds, following the schedule (--faults or --schedule FILE, one fault per line, '#' " +
			"comments; the default cycles through them all): " + strings.Join(faultList(), ", ") + ". A kill is " +
			"kill -9, undone by restarting the node once its requests moved; sigstop, the partitions (every byte " +
			"to the node's cluster port, or between the node and the workspace, dropped, nothing refused) and the " +
			"toxics (latency 100 ms, bandwidth 256 KB/s on every link) last --hold. Each round records when the fault began, how long each request " +
			"the faulted node owned waited until another node claimed it (the failover time), and how long until " +
			"a request submitted after the fault was signed; the report gives p50, p99 and max per kind of fault, " +
			"and marks each fault on the latency plot. The invariant checker runs at the end, as for bench; the " +
			"drill exits 1 on any violation or on a round that did not recover.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBench(cmd, f, "drill") },
	}
	f.addBenchFlags(cmd.Flags(), "drill")
	fl := cmd.Flags()
	fl.IntVar(&f.cfg.Rounds, "rounds", f.cfg.Rounds, "how many rounds, one fault each")
	fl.StringSliceVar(&f.faults, "faults", nil, "the schedule as a list, cycled: e.g. kill-leader,kill-owner")
	fl.StringVar(&f.schedule, "schedule", "", "the schedule file: one fault per line, cycled")
	fl.DurationVar(&f.cfg.Hold, "hold", f.cfg.Hold, "how long a fault that is undone lasts (sigstop, partitions, toxics)")
	fl.DurationVar(&f.cfg.Settle, "settle", f.cfg.Settle, "the pause after a round's recovery before the next fault")
	fl.DurationVar(&f.cfg.RoundTimeout, "round-timeout", f.cfg.RoundTimeout, "the bound of one round, fault to recovery")
	return cmd
}

func faultList() []string {
	var out []string
	for _, f := range harness.DefaultSchedule() {
		out = append(out, string(f))
	}
	return out
}

// runBench runs a bench or drill and writes its report.
func runBench(cmd *cobra.Command, f *benchFlags, kind string) error {
	cfg := f.cfg
	cfg.Callback = !f.noCB
	if f.findMax {
		fm := f.fm
		cfg.FindMax = &fm
	}
	if err := f.loadSchedule(&cfg); err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	if len(f.attach.NodeConfigs) > 0 || f.attach.WorkspaceDir != "" {
		a := f.attach
		cfg.Attach = &a
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("%s: the binary to run the nodes with: %w", kind, err)
	}
	cfg.Launch.Binary = exe
	if cfg.Attach == nil {
		if cfg.Launch.Dir, err = benchDir(f.dir, kind); err != nil {
			return err
		}
		if !f.keep && f.dir == "" {
			defer os.RemoveAll(cfg.Launch.Dir)
		}
	}
	out := f.out
	if out == "" {
		out = fmt.Sprintf("coterie-%s-%s", kind, time.Now().Format("20060102-150405"))
	}
	stderr := cmd.ErrOrStderr()
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelInfo
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	bar, update := loadProgress(stderr, cfg.Load.Duration)
	cfg.Load.Progress = update
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cfg.Attach == nil {
		fmt.Fprintf(stderr, "%s: starting %d nodes in %s\n", kind, cfg.Launch.Nodes, cfg.Launch.Dir)
	}
	rep, runErr := harness.Run(ctx, cfg)
	bar.done()
	if rep == nil {
		if cfg.Attach != nil {
			return fmt.Errorf("%s: %w", kind, runErr)
		}
		return fmt.Errorf("%s: %w (logs in %s)", kind, runErr, cfg.Launch.Dir)
	}
	if err := writeReports(cmd.OutOrStdout(), rep, out, kind); err != nil {
		return errors.Join(runErr, err)
	}
	switch {
	case errors.Is(runErr, context.Canceled):
		return fmt.Errorf("%s: interrupted; what was measured until then is in %s", kind, out)
	case runErr != nil:
		return fmt.Errorf("%s: %w (report in %s)", kind, runErr, out)
	case !rep.Check.OK:
		return fmt.Errorf("%s: the invariant checker found %d violations (report in %s)", kind, len(rep.Check.Violations), out)
	}
	return nil
}

// loadSchedule sets cfg's schedule from --faults or --schedule.
func (f *benchFlags) loadSchedule(cfg *harness.Config) error {
	switch {
	case f.schedule != "" && len(f.faults) > 0:
		return errors.New("give --faults or --schedule, not both")
	case f.schedule != "":
		file, err := os.Open(f.schedule)
		if err != nil {
			return err
		}
		defer file.Close()
		cfg.Schedule, err = harness.ParseSchedule(file, cfg.Launch.Nodes)
		return err
	case len(f.faults) > 0:
		var err error
		cfg.Schedule, err = harness.ParseSchedule(strings.NewReader(strings.Join(f.faults, "\n")), cfg.Launch.Nodes)
		return err
	}
	return nil
}

// benchDir returns the directory the cluster runs in.
func benchDir(dir, kind string) (string, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "coterie-"+kind+"-")
		if err != nil {
			return "", fmt.Errorf("%s: %w", kind, err)
		}
		return d, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("%s: --dir: %w", kind, err)
	}
	return filepath.Abs(dir)
}

// writeReports prints the table and writes the JSON and HTML reports.
func writeReports(w io.Writer, rep *report.Run, out, kind string) error {
	if err := report.WriteTable(w, rep); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	for _, r := range []struct {
		name  string
		write func(io.Writer, *report.Run) error
	}{{kind + ".json", report.WriteJSON}, {kind + ".html", report.WriteHTML}} {
		path := filepath.Join(out, r.name)
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		err = r.write(f, rep)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		fmt.Fprintf(w, "wrote %s\n", path)
	}
	return nil
}
