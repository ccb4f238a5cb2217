package console

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/coterie-mpc/coterie/clock"
)

func testRecorder(t *testing.T) (*Recorder, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0)
	cfg := DefaultRecorderConfig()
	cfg.Clock = clk
	r, err := NewRecorder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, clk
}

// TestBuckets counts in rolling buckets: in order, out of order, into a
// gap, too old, past the window, and past the keys a bucket keeps.
func TestBuckets(t *testing.T) {
	b := newBuckets(time.Minute, 10*time.Minute)
	at := func(min, sec int) time.Time {
		return t0.Add(time.Duration(min)*time.Minute + time.Duration(sec)*time.Second)
	}
	b.add(at(0, 5), "signed", 1)
	b.add(at(0, 50), "signed", 2)
	b.add(at(3, 0), "failed", 1)
	b.add(at(1, 30), "signed", 4) // into the gap: counts in minute 3
	b.add(at(-1, 0), "signed", 8) // before the oldest bucket: dropped
	tests := []struct {
		now    time.Time
		window time.Duration
		want   map[string]int
	}{
		{at(3, 10), 10 * time.Minute, map[string]int{"signed": 7, "failed": 1}},
		{at(3, 10), time.Minute, map[string]int{"signed": 4, "failed": 1}},
		{at(12, 0), 10 * time.Minute, map[string]int{"signed": 4, "failed": 1}},
		{at(20, 0), 10 * time.Minute, map[string]int{}},
	}
	for _, tt := range tests {
		if got := b.sum(tt.now, tt.window); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("sum at %v over %v: %v, want %v", tt.now.Sub(t0), tt.window, got, tt.want)
		}
	}
	// The ring keeps window/step+1 buckets whatever comes.
	for i := range 100 {
		b.add(at(10+i, 0), "signed", 1)
	}
	if b.r.len() != 11 {
		t.Fatalf("%d buckets kept", b.r.len())
	}
	for i := range maxBucketKeys + 3 {
		b.add(at(109, 0), string(rune('a'+i)), 1)
	}
	if got := b.sum(at(109, 0), 0); len(got) != maxBucketKeys+1 || got[otherKey] != 4 {
		t.Fatalf("a full bucket counts %v", got)
	}
}

// TestRecorderOutcomesAndDecisions: outcomes per user over the last hour
// from completion times, the last decisions newest first and bounded,
// and no request counted twice.
func TestRecorderOutcomesAndDecisions(t *testing.T) {
	r, clk := testRecorder(t)
	r.Completed(Decided{ID: "old", User: "ws/u1", Outcome: "signed", At: t0.Add(-2 * time.Hour)})
	r.Completed(Decided{ID: "r1", User: "ws/u1", Outcome: "signed", At: t0.Add(-30 * time.Minute)})
	r.Completed(Decided{ID: "r2", User: "ws/u1", Outcome: "rejected", Reason: "over the daily limit"})
	r.Completed(Decided{ID: "r2", User: "ws/u1", Outcome: "rejected", Reason: "over the daily limit"})
	r.Completed(Decided{ID: "r3", User: "ws/u2", Outcome: "approved"})
	if got := r.Outcomes("ws/u1"); !reflect.DeepEqual(got, map[string]int{"signed": 1, "rejected": 1}) {
		t.Fatalf("u1 outcomes %v", got)
	}
	if got := r.Outcomes("nobody"); len(got) != 0 {
		t.Fatalf("unknown user's outcomes %v", got)
	}
	d := r.Decisions()
	if len(d) != 4 || d[0].ID != "r3" || d[1].Reason != "over the daily limit" || !d[1].At.Equal(t0) {
		t.Fatalf("decisions %+v", d)
	}
	clk.Advance(31 * time.Minute)
	if got := r.Outcomes("ws/u1"); !reflect.DeepEqual(got, map[string]int{"rejected": 1}) {
		t.Fatalf("u1 outcomes half an hour on %v", got)
	}
	for i := range 100 {
		r.Completed(Decided{ID: strings.Repeat("x", i+1), User: "ws/u3", Outcome: "signed"})
	}
	if d := r.Decisions(); len(d) != DefaultRecorderConfig().MaxDecisions || d[0].ID != strings.Repeat("x", 100) {
		t.Fatalf("%d decisions, newest %q", len(d), d[0].ID)
	}
}

// TestRecorderFailovers: one release command's requests make one
// failover; the new claims count as resumed, with their waits and the
// nodes that took them; the failovers kept and the requests waited for
// are bounded.
func TestRecorderFailovers(t *testing.T) {
	r, clk := testRecorder(t)
	r.Claimed("n1", "a") // no failover: nothing to count
	r.Released(10, "n1", "a")
	r.Released(10, "n1", "b")
	r.Released(10, "n1", "c")
	clk.Advance(400 * time.Millisecond)
	r.Claimed("n2", "a")
	clk.Advance(400 * time.Millisecond)
	r.Claimed("n3", "b")
	r.Claimed("n3", "b") // a repeated event counts once
	r.Released(12, "n2", "d")
	f := r.Failovers()
	if len(f) != 2 || f[0].Node != "n2" || f[0].Moved != 1 || f[0].Resumed != 0 || f[0].MaxWaitSeconds != 0 {
		t.Fatalf("failovers %+v", f)
	}
	want := Failover{At: t0, Node: "n1", Moved: 3, Resumed: 2, To: map[string]int{"n2": 1, "n3": 1},
		MeanWaitSeconds: 0.6, MaxWaitSeconds: 0.8}
	if !reflect.DeepEqual(f[1], want) {
		t.Fatalf("failover %+v, want %+v", f[1], want)
	}
	// Old failovers leave the ring with the claims they waited for.
	for i := range 100 {
		r.Released(uint64(100+i), "n1", "req"+strings.Repeat("y", i))
	}
	if f := r.Failovers(); len(f) != DefaultRecorderConfig().MaxFailovers {
		t.Fatalf("%d failovers kept", len(f))
	}
	if len(r.pending) != DefaultRecorderConfig().MaxFailovers {
		t.Fatalf("%d pending claims kept", len(r.pending))
	}
}

func stageSnap(values ...int64) *hdrhistogram.Snapshot {
	h := hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	for _, v := range values {
		_ = h.RecordValue(v)
	}
	return h.Export()
}

// TestRecorderLatency samples cumulative histograms on the fake clock:
// each point holds what was recorded since the previous sample, a reset
// counts whole, silent stages drop out of the answer, and the points are
// bounded by the window.
func TestRecorderLatency(t *testing.T) {
	r, clk := testRecorder(t)
	cum := map[string]*hdrhistogram.Snapshot{"callback": stageSnap(1000, 2000, 3000), "poll": stageSnap()}
	stop := r.SampleEvery(func() map[string]*hdrhistogram.Snapshot { return cum })
	defer stop()
	step := DefaultRecorderConfig().LatencyStep
	advance := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := clk.WaitForTimer(ctx, step); err != nil {
			t.Fatal(err)
		}
		clk.Advance(step)
	}
	advance()
	cum = map[string]*hdrhistogram.Snapshot{"callback": stageSnap(1000, 2000, 3000, 40_000), "poll": stageSnap()}
	advance()
	cum = map[string]*hdrhistogram.Snapshot{"callback": stageSnap(500), "poll": stageSnap()} // reset
	advance()
	l := r.Latency()
	if len(l.Stages) != 1 || l.Stages[0].Stage != "callback" || l.StepSeconds != 10 || l.WindowSeconds != 600 {
		t.Fatalf("latency %+v", l)
	}
	pts := l.Stages[0].Points
	if len(pts) != 3 || pts[0].Count != 3 || pts[1].Count != 1 || pts[2].Count != 1 || !pts[1].At.Equal(t0.Add(2*step)) {
		t.Fatalf("points %+v", pts)
	}
	if p := pts[0]; p.P50 < 1.99 || p.P50 > 2.01 || p.Max < 2.99 || p.Max > 3.01 {
		t.Fatalf("first point %+v", p)
	}
	if p := pts[1]; p.P99 < 39.9 || p.P99 > 40.1 {
		t.Fatalf("second point %+v", p)
	}
	for range 100 {
		advance()
	}
	if l := r.Latency(); len(l.Stages) != 0 {
		t.Fatalf("stages silent for the whole window still shown: %+v", l.Stages)
	}
	if n := r.latency["callback"].len(); n != 60 {
		t.Fatalf("%d points kept", n)
	}
	stop()
	if clk.Pending() != 0 {
		t.Fatalf("%d timers pending after stop", clk.Pending())
	}
}

// TestRecorderRefills: presignatures added per minute over the refill
// window, or since the start when that is shorter.
func TestRecorderRefills(t *testing.T) {
	r, clk := testRecorder(t)
	r.PresignaturesAdded("k1", 3)
	if got := r.AddedPerMinute("k1"); got != 3 {
		t.Fatalf("rate in the first minute %v", got)
	}
	clk.Advance(2 * time.Minute)
	r.PresignaturesAdded("k1", 3)
	if got := r.AddedPerMinute("k1"); got != 3 {
		t.Fatalf("rate after two minutes %v", got)
	}
	clk.Advance(20 * time.Minute)
	if got := r.AddedPerMinute("k1"); got != 0 {
		t.Fatalf("rate after the window %v", got)
	}
	if got := r.AddedPerMinute("k2"); got != 0 {
		t.Fatalf("unknown key's rate %v", got)
	}
}

func TestRecorderConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*RecorderConfig)
		want string
	}{
		{"no clock", func(c *RecorderConfig) { c.Clock = nil }, "Clock"},
		{"no step", func(c *RecorderConfig) { c.OutcomeStep = 0 }, "OutcomeStep"},
		{"too many buckets", func(c *RecorderConfig) { c.LatencyStep = time.Millisecond }, "LatencyWindow"},
		{"no decisions", func(c *RecorderConfig) { c.MaxDecisions = 0 }, "MaxDecisions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultRecorderConfig()
			tt.edit(&cfg)
			if _, err := NewRecorder(cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %s", err, tt.want)
			}
		})
	}
}
