package report

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// table is one block of figures, written by WriteTable with a tabwriter and
// by WriteHTML as an HTML table, so both show the same numbers.
type table struct {
	// Title names the table: a caption in HTML, a line of its own in the
	// terminal when the table has no Head.
	Title string
	// Head is the column names; nil for a table of name and value rows.
	Head []string
	Rows [][]string
	// Notes are lines under the table.
	Notes []string
}

// figures are the tables of a run, each nil when the run has nothing for
// it, so that empty sections are left out.
type figures struct {
	Latency    *table
	Load       *table
	Outcomes   *table
	Errors     *table
	Pool       *table
	CPU        *table
	Bare       *table
	FaultKinds *table
	Rounds     *table
	FindMax    *table
}

// terminal is the order of the tables in the terminal.
func (f *figures) terminal() []*table {
	return []*table{f.Latency, f.Load, f.Outcomes, f.Errors, f.Pool, f.CPU, f.Bare, f.FaultKinds, f.Rounds, f.FindMax}
}

func newFigures(r *Run) *figures {
	return &figures{
		Latency:    latencyTable(r),
		Load:       loadTable(r),
		Outcomes:   countTable("outcome", r.Outcomes),
		Errors:     countTable("error", r.Errors),
		Pool:       poolTable(r.Pool),
		CPU:        cpuTable(r),
		Bare:       bareTable(r.Bare),
		FaultKinds: faultKindsTable(r.FaultKinds),
		Rounds:     roundsTable(r.Faults),
		FindMax:    findMaxTable(r.FindMax),
	}
}

// kind is the run's kind for titles.
func kind(r *Run) string {
	if r.Kind == "" {
		return "run"
	}
	return r.Kind
}

// setupLine is the one line that says what the run was asked to do.
func setupLine(r *Run) string {
	s := r.Setup
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	if s.Nodes > 0 {
		add("%d nodes", s.Nodes)
	}
	if s.Cosigners > 0 {
		add("%d cosigners", s.Cosigners)
	}
	if s.Quorum > 0 {
		add("quorum %d", s.Quorum)
	}
	if s.Users > 0 {
		add("%d users", s.Users)
	}
	switch {
	case s.Rate > 0:
		add("open loop at %s", rate(s.Rate))
	case s.Concurrency > 0:
		add("closed loop, %d in flight", s.Concurrency)
	}
	if s.Duration > 0 {
		add("for %s", dur(s.Duration))
	}
	if s.MaxDigests > 0 {
		add("up to %d digests", s.MaxDigests)
	}
	if s.ConfigChanges > 0 || s.Retry > 0 || s.Reject > 0 {
		add("mix %s config changes, %s retry, %s reject", pct(s.ConfigChanges, 1), pct(s.Retry, 1), pct(s.Reject, 1))
	}
	if s.Rounds > 0 {
		add("%d rounds", s.Rounds)
	}
	head := kind(r)
	if !r.Started.IsZero() {
		head += " " + r.Started.Format("2006-01-02 15:04:05 MST")
	}
	if r.Elapsed > 0 {
		head += ", ran " + dur(r.Elapsed)
	}
	if len(parts) == 0 {
		return head
	}
	return head + ": " + strings.Join(parts, ", ")
}

func summaryRow(name string, s Summary) []string {
	return []string{name, fmt.Sprint(s.Count), dur(s.P50), dur(s.P90), dur(s.P99), dur(s.P999), dur(s.Max)}
}

func latencyTable(r *Run) *table {
	if r.Latency.Count == 0 && len(r.Stages) == 0 {
		return nil
	}
	t := &table{
		Title: "Latency: end to end, then each stage as the nodes timed it",
		Head:  []string{"latency", "count", "p50", "p90", "p99", "p99.9", "max"},
		Rows:  [][]string{summaryRow("end to end", r.Latency)},
	}
	for _, st := range r.Stages {
		t.Rows = append(t.Rows, summaryRow("  "+st.Name, st.Summary))
	}
	return t
}

func loadTable(r *Run) *table {
	if r.Throughput == 0 && r.Elapsed == 0 && len(r.Samples) == 0 {
		return nil
	}
	t := &table{Title: "Load", Rows: [][]string{{"throughput", rate(r.Throughput)}}}
	if len(r.Samples) > 0 {
		t.Rows = append(t.Rows, []string{"finished", fmt.Sprint(len(r.Samples))})
	}
	return t
}

// countTable lists counts by name, the largest first.
func countTable(name string, counts map[string]int) *table {
	if len(counts) == 0 {
		return nil
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	names := slices.SortedFunc(maps.Keys(counts), func(a, b string) int {
		return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b))
	})
	t := &table{Title: strings.ToUpper(name[:1]) + name[1:] + "s", Head: []string{name, "count", "share"}}
	for _, k := range names {
		t.Rows = append(t.Rows, []string{k, fmt.Sprint(counts[k]), pct(float64(counts[k]), float64(total))})
	}
	return t
}

func poolTable(pool []PoolSample) *table {
	if len(pool) == 0 {
		return nil
	}
	lo, hi := pool[0].Depth, pool[0].Depth
	for _, p := range pool {
		lo, hi = min(lo, p.Depth), max(hi, p.Depth)
	}
	return &table{
		Title: "Presignature pool",
		Rows: [][]string{
			{"pool min", fmt.Sprint(lo)},
			{"pool max", fmt.Sprint(hi)},
			{"pool last", fmt.Sprint(pool[len(pool)-1].Depth)},
		},
	}
}

// perSignature returns each process's CPU seconds per signature. The
// number of signatures is not in Run, but CPUPerSignature is the CPU of
// all processes over it, so each process's share of CPUPerSignature is
// its share of the CPU. It returns nil when there is no figure to share.
func perSignature(r *Run) []float64 {
	total := cpuTotal(r)
	if total <= 0 || r.CPUPerSignature <= 0 || !finite(r.CPUPerSignature) {
		return nil
	}
	out := make([]float64, len(r.CPU))
	for i, p := range r.CPU {
		if finite(p.Seconds) {
			out[i] = p.Seconds / total * r.CPUPerSignature
		}
	}
	return out
}

// cpuTotal is the CPU seconds of all processes, leaving out a figure that
// is not finite (a process whose CPU could not be read).
func cpuTotal(r *Run) float64 {
	total := 0.0
	for _, p := range r.CPU {
		if finite(p.Seconds) {
			total += p.Seconds
		}
	}
	return total
}

func cpuTable(r *Run) *table {
	if len(r.CPU) == 0 && r.CPUPerSignature == 0 {
		return nil
	}
	t := &table{Title: "CPU", Head: []string{"process", "cpu", "share", "per signature"}}
	total := cpuTotal(r)
	per := perSignature(r)
	for i, p := range r.CPU {
		ps := "-"
		if per != nil && finite(p.Seconds) {
			ps = cpuDur(per[i])
		}
		t.Rows = append(t.Rows, []string{p.Name, cpuDur(p.Seconds), pct(p.Seconds, total), ps})
	}
	all := "-"
	if per != nil {
		all = cpuDur(r.CPUPerSignature)
	}
	t.Rows = append(t.Rows, []string{"all", cpuDur(total), "", all})
	return t
}

func bareTable(b Bare) *table {
	if b == (Bare{}) {
		return nil
	}
	return &table{
		Title: "Library alone (bare)",
		Rows: [][]string{
			{"bare online p50", dur(b.Online)},
			{"bare presign p50", dur(b.Presign)},
			{"bare presign cpu", cpuDur(b.PresignCPU)},
			{"end-to-end p50 / bare online", num(b.OnlineRatio, 2) + "×"},
			{"cpu per signature / bare presign cpu", num(b.PresignRatio, 2) + "×"},
		},
	}
}

func faultKindsTable(kinds []FaultKind) *table {
	if len(kinds) == 0 {
		return nil
	}
	t := &table{
		Title: "Faults by kind",
		Head:  []string{"fault", "rounds", "signing p50 / p99 / max", "failovers", "failover p50 / p99 / max"},
	}
	for _, k := range kinds {
		t.Rows = append(t.Rows, []string{
			k.Kind, fmt.Sprint(k.Rounds), threePoints(k.Signing), fmt.Sprint(k.Failover.Count), threePoints(k.Failover),
		})
	}
	return t
}

// threePoints prints a summary's p50, p99 and max, or "-" when it counted
// nothing.
func threePoints(s Summary) string {
	if s.Count == 0 {
		return "-"
	}
	return dur(s.P50) + " / " + dur(s.P99) + " / " + dur(s.Max)
}

func roundsTable(faults []Fault) *table {
	if len(faults) == 0 {
		return nil
	}
	t := &table{
		Title: "Drill rounds",
		Head:  []string{"round", "fault", "target", "at", "healed", "signing", "failovers", "failover max", "error"},
	}
	for _, f := range faults {
		healed, fmax := "-", "-"
		if f.Healed > 0 {
			healed = dur(f.Healed)
		}
		if len(f.Failover) > 0 {
			fmax = dur(slices.Max(f.Failover))
		}
		t.Rows = append(t.Rows, []string{
			fmt.Sprint(f.Round), f.Kind, f.Target, dur(f.At), healed, dur(f.Signing),
			fmt.Sprint(len(f.Failover)), fmax, f.Err,
		})
	}
	return t
}

func findMaxTable(fm *FindMax) *table {
	if fm == nil {
		return nil
	}
	t := &table{
		Title: "Find max",
		Head:  []string{"rate", "p99", "backlog", "cpu per signature", "bounds"},
	}
	for _, s := range fm.Steps {
		held := "broken"
		if s.OK {
			held = "held"
		}
		t.Rows = append(t.Rows, []string{rate(s.Rate), dur(s.P99), fmt.Sprint(s.Backlog), cpuDur(s.CPUPerSignature), held})
	}
	t.Notes = []string{fmt.Sprintf("max %s, ceiling %s (%s of the ceiling)", rate(fm.Max), rate(fm.Ceiling), pct(fm.Max, fm.Ceiling))}
	return t
}

// verdict is the invariant check's outcome in one word: "OK", "FAIL", or
// "NOT RUN" when Check is empty (the run stopped before the checker ran).
func verdict(c Check) string {
	switch {
	case c.OK:
		return "OK"
	case len(c.Violations) == 0 && c.Summary == "":
		return "NOT RUN"
	default:
		return "FAIL"
	}
}

// span is how long the run's time axis must be to hold everything that
// happened in it.
func span(r *Run) time.Duration {
	s := r.Elapsed
	for _, x := range r.Samples {
		s = max(s, x.At)
	}
	for _, p := range r.Pool {
		s = max(s, p.At)
	}
	for _, f := range r.Faults {
		s = max(s, f.At, f.Healed)
	}
	return s
}
