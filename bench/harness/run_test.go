package harness

import (
	"errors"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/coterie-mpc/coterie/bench/load"
	"github.com/coterie-mpc/coterie/bench/report"
	"github.com/coterie-mpc/coterie/node"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"users", func(c *Config) { c.Users = 0 }, "users is 0"},
		{"shares need a handler", func(c *Config) { c.Callback, c.Load.Reject = false, 0.1 }, "need the callback handler"},
		{"bare", func(c *Config) { c.BarePresigns = -1 }, "bare presigns is -1"},
		{"rounds", func(c *Config) { c.Rounds = -1 }, "rounds is -1"},
		{"schedule", func(c *Config) { c.Rounds, c.Schedule = 3, nil }, "needs a schedule"},
		{"small cluster", func(c *Config) { c.Rounds, c.Launch.Nodes = 3, 1 }, "needs 3 nodes or more"},
		{"hold", func(c *Config) { c.Rounds, c.Hold = 3, 0 }, "hold 0s"},
		{"drill and find-max", func(c *Config) { c.Rounds, c.FindMax = 3, DefaultFindMax() }, "does not search"},
		{"find-max", func(c *Config) {
			c.FindMax = &FindMaxConfig{From: 1, Factor: 1, Steps: 1, StepDuration: time.Second, MaxP99: time.Second}
		}, "factor 1 above 1"},
		{"clock", func(c *Config) { c.Clock = nil }, "clock is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want ErrConfig saying %q", err, tc.want)
			}
		})
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("the default config: %v", err)
	}
}

func TestSigningAfter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	reqs := []*load.Request{
		// Submitted before the fault: it does not show the cluster signing
		// again, though it finished after.
		{State: "signed", Submitted: at(time.Second), Finished: at(2500 * time.Millisecond)},
		{State: "signed", Submitted: at(3 * time.Second), Finished: at(4 * time.Second)},
		{State: "signed", Submitted: at(2100 * time.Millisecond), Finished: at(3500 * time.Millisecond)},
		{State: "rejected", Submitted: at(2050 * time.Millisecond), Finished: at(2200 * time.Millisecond)},
		{State: "", Submitted: at(2020 * time.Millisecond)},
	}
	faults := []report.Fault{{At: 2 * time.Second}, {At: 10 * time.Second}}
	signingAfter(faults, t0, reqs)
	if faults[0].Signing != 1500*time.Millisecond {
		t.Errorf("signing after the first fault %s, want 1.5s (the first signature of a request submitted after it)", faults[0].Signing)
	}
	if faults[1].Signing != 0 {
		t.Errorf("signing after the last fault %s, want 0: nothing was signed after it", faults[1].Signing)
	}
}

func TestSummarizeFaults(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	got := summarizeFaults([]report.Fault{
		{Kind: "kill-owner", Signing: ms(900), Failover: []time.Duration{ms(150), ms(250)}},
		{Kind: "kill-leader", Signing: ms(1200), Failover: []time.Duration{ms(800)}},
		{Kind: "kill-owner", Signing: ms(700), Failover: []time.Duration{ms(200)}},
		{Kind: "kill-owner", Err: "did not recover"},
	})
	if len(got) != 2 || got[0].Kind != "kill-owner" || got[1].Kind != "kill-leader" {
		t.Fatalf("kinds %+v, want kill-owner then kill-leader", got)
	}
	ko := got[0]
	if ko.Rounds != 3 || ko.Failover.Count != 3 || ko.Signing.Count != 2 {
		t.Errorf("kill-owner: %d rounds, %d failovers, %d signing times; want 3, 3, 2", ko.Rounds, ko.Failover.Count, ko.Signing.Count)
	}
	near := func(d, want time.Duration) bool { return d >= want-ms(1) && d <= want+ms(1) }
	if !near(ko.Failover.P50, ms(200)) || !near(ko.Failover.Max, ms(250)) || !near(ko.Signing.Max, ms(900)) {
		t.Errorf("kill-owner failover p50 %s max %s, signing max %s; want 200ms, 250ms, 900ms", ko.Failover.P50, ko.Failover.Max, ko.Signing.Max)
	}
}

func TestStepBounds(t *testing.T) {
	fm := &FindMaxConfig{MaxP99: time.Second, MaxBacklog: 1}
	req := func(state string, latency time.Duration) *load.Request {
		t0 := time.Unix(1000, 0)
		return &load.Request{State: state, Created: t0, Finished: t0.Add(latency)}
	}
	fast := []*load.Request{req("signed", 100*time.Millisecond), req("signed", 200*time.Millisecond), req("rejected", 5*time.Second)}
	for _, tc := range []struct {
		name string
		res  *load.Result
		ok   bool
	}{
		{"within bounds", &load.Result{Requests: fast}, true},
		{"slow p99", &load.Result{Requests: append(fast, req("signed", 3*time.Second))}, false},
		{"backlog", &load.Result{Requests: append(fast, req("", 0), req("", 0))}, false},
		{"skipped", &load.Result{Requests: fast, Backlog: 2}, false},
		{"nothing signed", &load.Result{Requests: []*load.Request{req("rejected", time.Millisecond)}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st := step(1, tc.res, fm); st.OK != tc.ok {
				t.Errorf("step %+v: ok %v, want %v", st, st.OK, tc.ok)
			}
		})
	}
}

func TestMergeStages(t *testing.T) {
	snap := func(us ...int64) *hdrhistogram.Snapshot {
		h := newHistogram()
		for _, v := range us {
			h.record(time.Duration(v) * time.Microsecond)
		}
		return h.h.Export()
	}
	from := map[string]node.StagesReport{
		"n1": {NodeID: "n1", Stages: map[string]*hdrhistogram.Snapshot{"online_round": snap(5000), "poll": snap(100)}},
		// n2 restarted during the load: its counts went down.
		"n2": {NodeID: "n2", Stages: map[string]*hdrhistogram.Snapshot{"online_round": snap(1, 1, 1)}},
	}
	to := map[string]node.StagesReport{
		"n1": {NodeID: "n1", Stages: map[string]*hdrhistogram.Snapshot{"online_round": snap(5000, 2000), "poll": snap(100, 300)}},
		"n2": {NodeID: "n2", Stages: map[string]*hdrhistogram.Snapshot{"online_round": snap(4000)}},
	}
	got := mergeStages(recordedSince(from, to))
	if len(got) != 2 || got[0].Name != "poll" || got[1].Name != "online_round" {
		t.Fatalf("stages %+v, want poll then online_round", got)
	}
	if got[0].Count != 1 || got[1].Count != 2 {
		t.Errorf("counts poll %d, online_round %d; want 1 (what the load added) and 2 (n1's one, n2's whole)", got[0].Count, got[1].Count)
	}
	if got[1].Max < 3990*time.Microsecond || got[1].Max > 4010*time.Microsecond {
		t.Errorf("online_round max %s, want n2's 4ms", got[1].Max)
	}
}
