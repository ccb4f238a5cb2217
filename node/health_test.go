package node

import (
	"strings"
	"testing"
)

func TestPhaseString(t *testing.T) {
	want := map[Phase]string{
		PhaseStarting: "starting", PhaseCatchingUp: "catching-up", PhaseServing: "serving",
		PhaseDraining: "draining", PhaseLeaving: "leaving", PhaseStopped: "stopped", Phase(42): "phase(42)",
	}
	for p, s := range want {
		if p.String() != s {
			t.Errorf("Phase(%d) = %q, want %q", int32(p), p.String(), s)
		}
	}
}

// TestDecideHealth covers every /v1/health answer and the order of the
// checks: what outranks what.
func TestDecideHealth(t *testing.T) {
	serving := healthFacts{node: "n1", phase: PhaseServing, leader: "n2", clusterID: "c-1", member: true}
	with := func(change func(f *healthFacts)) healthFacts {
		f := serving
		change(&f)
		return f
	}
	tests := []struct {
		name   string
		facts  healthFacts
		code   int
		status string
		reason string // a substring of the reason
	}{
		{"serving", serving, 200, "serving", "serving"},
		{"signing stopped outranks everything", with(func(f *healthFacts) { f.halted = "presignature reused"; f.phase = PhaseDraining; f.leader = "" }),
			503, "signing_stopped", "signing stopped: presignature reused"},
		{"draining", with(func(f *healthFacts) { f.phase = PhaseDraining }), 429, "standby", "draining for a restart"},
		{"leaving, even without a leader", with(func(f *healthFacts) { f.phase = PhaseLeaving; f.leader = "" }), 429, "standby", "leaving the cluster"},
		{"stopping", with(func(f *healthFacts) { f.phase = PhaseStopped }), 429, "standby", "stopping"},
		{"starting without a leader", with(func(f *healthFacts) { f.phase = PhaseStarting; f.leader = ""; f.clusterID = "" }), 503, "no_quorum", "no raft leader"},
		{"starting with a leader", with(func(f *healthFacts) { f.phase = PhaseStarting; f.clusterID = "" }), 473, "catching_up", "catching up"},
		{"catching up, not in the table yet", with(func(f *healthFacts) { f.phase = PhaseCatchingUp; f.member = false }), 473, "catching_up", "catching-up"},
		{"no member table", with(func(f *healthFacts) { f.clusterID = ""; f.member = false }), 501, "not_initialized", "no member table"},
		{"removed, and so without a leader", with(func(f *healthFacts) { f.member = false; f.leader = "" }), 501, "not_member", "n1 is not in the member table of cluster c-1"},
		{"no quorum", with(func(f *healthFacts) { f.leader = "" }), 503, "no_quorum", "no quorum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h := decideHealth(tt.facts)
			if code != tt.code || h.Status != tt.status || !strings.Contains(h.Reason, tt.reason) {
				t.Fatalf("got %d %+v, want %d %s with %q", code, h, tt.code, tt.status, tt.reason)
			}
			if h.NodeID != "n1" || h.Phase != tt.facts.phase.String() || h.LeaderID != tt.facts.leader {
				t.Fatalf("body %+v does not carry the facts %+v", h, tt.facts)
			}
		})
	}
}
