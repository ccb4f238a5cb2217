package harness_test

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/bench/harness"
	"github.com/coterie-mpc/coterie/bench/launch"
	"github.com/coterie-mpc/coterie/bench/launch/launchtest"
)

// TestDrill runs a four-round drill on real processes (kill -9 of an
// owner, of the leader, a partition of an owner from its peers and one from
// the workspace) under load with the callback handler, and expects every
// round to recover and the invariant checker to pass, having read every
// source. The hold outlasts the cut-off node's watch of the workspace (3 s
// of silence, then owner_timeout), so that it hands its requests back.
func TestDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	cfg := harness.DefaultConfig()
	cfg.Launch.Binary, cfg.Launch.Dir = launchtest.Binary(t), t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	cfg.Schedule = []harness.Fault{harness.KillOwner, harness.KillLeader, harness.Partition, harness.PartitionWorkspace}
	cfg.Rounds = len(cfg.Schedule)
	cfg.Hold, cfg.Settle = 6*time.Second, time.Second
	cfg.Load.Rate, cfg.Load.Reject, cfg.Load.Retry = 0.5, 0.2, 0.2
	cfg.BarePresigns = 0
	defer func() {
		if t.Failed() {
			for _, name := range []string{"n1.log", "n2.log", "n3.log", "workspace.log"} {
				t.Logf("%s:\n%s", name, launch.Tail(filepath.Join(cfg.Launch.Dir, name), 60))
			}
		}
	}()
	rep, err := harness.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Faults) != cfg.Rounds {
		t.Fatalf("%d rounds ran, want %d", len(rep.Faults), cfg.Rounds)
	}
	for _, f := range rep.Faults {
		if f.Err != "" || f.Target == "" || f.Healed <= f.At {
			t.Errorf("round %d (%s on %q): healed at %s after the fault at %s: %s", f.Round, f.Kind, f.Target, f.Healed, f.At, f.Err)
		}
	}
	if !rep.Check.OK {
		t.Errorf("the invariant checker: %s\n%s", rep.Check.Summary, strings.Join(rep.Check.Violations, "\n"))
	}
	t.Logf("the invariant checker: %s", rep.Check.Summary)
	if strings.Contains(rep.Check.Summary, "I5 not checked") || !strings.Contains(rep.Check.Summary, "on 3 nodes") ||
		!strings.Contains(rep.Check.Summary, "raft log entries from 3 nodes") || strings.Contains(rep.Check.Summary, "compacted") ||
		!strings.Contains(rep.Check.Summary, "audit log entries from 3 nodes") {
		t.Errorf("the checker did not read every source: %s", rep.Check.Summary)
	}
	if rep.Outcomes["signed"] == 0 || rep.Outcomes["rejected"] == 0 || rep.Outcomes["unfinished"] != 0 {
		t.Errorf("outcomes %v, want signed and rejected requests and none unfinished", rep.Outcomes)
	}
	if len(rep.Errors) != 0 {
		t.Errorf("errors %v, want none: every request ended as the mix expected", rep.Errors)
	}
	if rep.Latency.Count == 0 || len(rep.Samples) == 0 || len(rep.Stages) == 0 || len(rep.Pool) == 0 || len(rep.CPU) < 5 {
		t.Errorf("measured %d latencies, %d samples, %d stages, %d pool samples, %d processes' CPU; want them all",
			rep.Latency.Count, len(rep.Samples), len(rep.Stages), len(rep.Pool), len(rep.CPU))
	}
	if len(rep.FaultKinds) != len(cfg.Schedule) {
		t.Errorf("fault kinds %+v, want %d", rep.FaultKinds, len(cfg.Schedule))
	}
	for _, f := range rep.Faults {
		t.Logf("round %d: %s on %s, %d requests moved: %v", f.Round, f.Kind, f.Target, len(f.Failover), f.Failover)
	}
}
