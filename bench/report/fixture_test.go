package report

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// hostile is a string that must reach the page as text, never as markup.
const hostile = `<script>alert(1)</script>`

var faultKinds = []string{"kill-leader", "kill-owner", "sigstop", "partition-leader"}

// drillRun is a small drill with a little of everything, and hostile
// strings wherever the run carries names from outside.
func drillRun() *Run {
	r := &Run{
		Kind:    "drill",
		Started: time.Date(2026, 3, 4, 10, 30, 0, 0, time.UTC),
		Elapsed: 40 * time.Second,
		Setup: Setup{
			Nodes: 3, Cosigners: 3, Quorum: 2, Users: 8, Rate: 20, Duration: 40 * time.Second,
			MaxDigests: 4, ConfigChanges: 0.1, Retry: 0.05, Reject: 0.02, Rounds: 4,
		},
		Latency: Summary{Count: 760, P50: 42300 * time.Microsecond, P90: 61 * time.Millisecond,
			P99: 240 * time.Millisecond, P999: 1800 * time.Millisecond, Max: 3200 * time.Millisecond},
		Stages: []Stage{
			{Name: "poll", Summary: Summary{Count: 760, P50: 40 * time.Microsecond, P90: 90 * time.Microsecond, P99: 2 * time.Millisecond, P999: 3 * time.Millisecond, Max: 5 * time.Millisecond}},
			{Name: "online_round", Summary: Summary{Count: 760, P50: 8 * time.Millisecond, P90: 11 * time.Millisecond, P99: 20 * time.Millisecond, P999: 30 * time.Millisecond, Max: 41 * time.Millisecond}},
		},
		Throughput: 19.0,
		Outcomes:   map[string]int{"signed": 740, "rejected": 12, "failed": 8},
		Errors:     map[string]int{"callback: REJECT": 12, "presign: timeout": 8},
		CPU: []ProcessCPU{
			{Name: "node-1", Seconds: 12.5}, {Name: "node-2", Seconds: 11.0},
			{Name: "node-3", Seconds: 10.5}, {Name: "workspace", Seconds: 4.0},
		},
		CPUPerSignature: 0.05,
		Bare: Bare{Online: 6 * time.Millisecond, Presign: 180 * time.Millisecond, PresignCPU: 0.04,
			OnlineRatio: 7.05, PresignRatio: 1.25},
		Check: Check{
			Violations: []string{"I1: presignature p-17 reserved by req-3 and req-9", "I3: request " + hostile + " lost"},
			Summary:    "read 760 requests, 3 nodes, 812 ledger entries",
		},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 760 {
		at := time.Duration(i) * 40 * time.Second / 760
		lat := 35*time.Millisecond + time.Duration(rng.IntN(30))*time.Millisecond
		outcome := "signed"
		switch {
		case i%63 == 5:
			outcome = "rejected"
		case i%95 == 7:
			outcome = "failed"
			lat = 3200 * time.Millisecond
		}
		r.Samples = append(r.Samples, Sample{At: at, Latency: lat, Outcome: outcome, Digests: 1 + i%4})
	}
	for i := range 40 {
		r.Pool = append(r.Pool, PoolSample{At: time.Duration(i) * time.Second, Depth: 50 - i%10})
	}
	for i, k := range faultKinds {
		at := time.Duration(5+9*i) * time.Second
		f := Fault{Round: i + 1, Kind: k, Target: fmt.Sprintf("node-%d", i%3+1), At: at,
			Healed: at + 3*time.Second, Signing: time.Duration(400+100*i) * time.Millisecond}
		for j := range i + 1 {
			f.Failover = append(f.Failover, time.Duration(900+50*j)*time.Millisecond)
		}
		r.Faults = append(r.Faults, f)
		r.FaultKinds = append(r.FaultKinds, FaultKind{Kind: k, Rounds: 1,
			Signing:  Summary{Count: 1, P50: f.Signing, P90: f.Signing, P99: f.Signing, P999: f.Signing, Max: f.Signing},
			Failover: Summary{Count: int64(len(f.Failover)), P50: f.Failover[0], P90: f.Failover[0], P99: f.Failover[i], P999: f.Failover[i], Max: f.Failover[i]}})
	}
	r.Faults[3].Err = "did not recover: " + hostile
	return r
}

// findMaxRun is a bench with a --find-max search.
func findMaxRun() *Run {
	return &Run{
		Kind:     "bench",
		Started:  time.Date(2026, 3, 4, 11, 0, 0, 0, time.UTC),
		Elapsed:  2 * time.Minute,
		Setup:    Setup{Nodes: 3, Cosigners: 3, Quorum: 2, Users: 4, Concurrency: 16, Duration: 2 * time.Minute, MaxDigests: 1},
		Latency:  Summary{Count: 10, P50: 50 * time.Millisecond, P90: 60 * time.Millisecond, P99: 70 * time.Millisecond, P999: 70 * time.Millisecond, Max: 70 * time.Millisecond},
		Outcomes: map[string]int{"signed": 10},
		FindMax: &FindMax{
			Steps: []Step{
				{Rate: 10, P99: 60 * time.Millisecond, OK: true, CPUPerSignature: 0.05},
				{Rate: 20, P99: 80 * time.Millisecond, OK: true, CPUPerSignature: 0.048},
				{Rate: 40, P99: 900 * time.Millisecond, Backlog: 120, OK: false, CPUPerSignature: 0.06},
			},
			Max:     20,
			Ceiling: 50,
		},
		Check: Check{OK: true, Summary: "read 10 requests"},
	}
}

// largeRun is a drill of n samples, to check that the page stays small.
func largeRun(n int) *Run {
	r := drillRun()
	r.Elapsed = 10 * time.Minute
	r.Setup.Duration = r.Elapsed
	r.Throughput = float64(n) / r.Elapsed.Seconds()
	r.Latency.Count = int64(n)
	r.Outcomes = map[string]int{"signed": n - n/100, "failed": n / 100}
	for i := range r.Faults {
		r.Faults[i].At = time.Duration(60+120*i) * time.Second
		r.Faults[i].Healed = r.Faults[i].At + 20*time.Second
	}
	rng := rand.New(rand.NewPCG(3, 4))
	r.Samples = r.Samples[:0]
	for i := range n {
		at := time.Duration(i) * r.Elapsed / time.Duration(n)
		lat := 30*time.Millisecond + time.Duration(rng.ExpFloat64()*float64(10*time.Millisecond))
		for _, f := range r.Faults {
			if at >= f.At && at < f.Healed {
				lat += time.Duration(rng.IntN(2000)) * time.Millisecond
			}
		}
		outcome := "signed"
		if i%100 == 0 {
			outcome = "failed"
		}
		r.Samples = append(r.Samples, Sample{At: at, Latency: lat, Outcome: outcome, Digests: 1})
	}
	r.Pool = r.Pool[:0]
	for i := range 600 {
		r.Pool = append(r.Pool, PoolSample{At: time.Duration(i) * time.Second, Depth: 40 + rng.IntN(20)})
	}
	return r
}
