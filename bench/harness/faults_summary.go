package harness

import (
	"slices"
	"time"

	"github.com/coterie-mpc/coterie/bench/load"
	"github.com/coterie-mpc/coterie/bench/report"
)

// signingAfter sets each fault's Signing: how long after the fault a
// request submitted after it finished signed, from the load's records.
func signingAfter(faults []report.Fault, started time.Time, reqs []*load.Request) {
	for i := range faults {
		at := started.Add(faults[i].At)
		var first time.Time
		for _, q := range reqs {
			if q.State != "signed" || q.Submitted.Before(at) {
				continue
			}
			if first.IsZero() || q.Finished.Before(first) {
				first = q.Finished
			}
		}
		if !first.IsZero() {
			faults[i].Signing = first.Sub(at)
		}
	}
}

// summarizeFaults summarizes the rounds by kind, in order of first
// appearance.
func summarizeFaults(faults []report.Fault) []report.FaultKind {
	var out []report.FaultKind
	signing, failover := map[string]*histogram{}, map[string]*histogram{}
	for _, f := range faults {
		i := slices.IndexFunc(out, func(k report.FaultKind) bool { return k.Kind == f.Kind })
		if i < 0 {
			out = append(out, report.FaultKind{Kind: f.Kind})
			i = len(out) - 1
			signing[f.Kind], failover[f.Kind] = newHistogram(), newHistogram()
		}
		out[i].Rounds++
		if f.Signing > 0 {
			signing[f.Kind].record(f.Signing)
		}
		for _, d := range f.Failover {
			failover[f.Kind].record(d)
		}
	}
	for i := range out {
		out[i].Signing = signing[out[i].Kind].summary()
		out[i].Failover = failover[out[i].Kind].summary()
	}
	return out
}
