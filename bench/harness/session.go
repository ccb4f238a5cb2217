package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/coterie-mpc/coterie/bench/check"
	"github.com/coterie-mpc/coterie/bench/launch"
	"github.com/coterie-mpc/coterie/bench/load"
	"github.com/coterie-mpc/coterie/bench/report"
	"github.com/coterie-mpc/coterie/internal/hdr"
	"github.com/coterie-mpc/coterie/node"
	"github.com/coterie-mpc/coterie/protocol"
)

// session is one Run's state.
type session struct {
	cfg   Config
	log   *slog.Logger
	c     *launch.Cluster
	rep   *report.Run
	users []string

	// Taken when the load starts.
	started     time.Time
	stagesFrom  map[string]node.StagesReport
	stagesKept  map[string][]*hdrhistogram.Snapshot // by stage
	cpuFrom     map[string]time.Duration
	poolFrom    int
	loads       []*load.Result
	poolMu      sync.Mutex
	poolSamples []report.PoolSample
}

// drive runs the load, with the pool sampler and, for a drill, the fault
// rounds, until the load is done; it returns the load's or a round's
// error.
func (s *session) drive(ctx context.Context) error {
	s.started = s.cfg.Clock.Now()
	s.rep.Started = s.started
	s.stagesFrom, s.stagesKept = s.stages(ctx), map[string][]*hdrhistogram.Snapshot{}
	s.cpuFrom = s.c.CPU()
	s.poolFrom, _ = s.c.PoolDepth(ctx)

	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() { defer close(sampled); s.samplePool(sctx) }()
	defer func() { stopSampling(); <-sampled }()

	if s.cfg.FindMax != nil {
		return s.findMax(ctx)
	}
	lc := s.cfg.Load
	lc.Users = s.users
	var rounds chan error
	if s.cfg.Rounds > 0 {
		stop := make(chan struct{})
		lc.Stop = stop
		// A drill's load lasts as long as its rounds.
		lc.Duration = time.Duration(s.cfg.Rounds+1) * (s.cfg.RoundTimeout + s.cfg.Settle)
		rounds = make(chan error, 1)
		go func() { defer close(stop); rounds <- s.drill(ctx) }()
	}
	s.log.Info("load started", "rate", lc.Rate, "concurrency", lc.Concurrency, "duration", lc.Duration)
	res, err := load.Run(ctx, s.c.Workspace, lc)
	if res != nil {
		s.loads = append(s.loads, res)
	}
	if rounds != nil {
		err = errors.Join(err, <-rounds)
	}
	return err
}

// samplePool records the cluster-wide pool depth every SampleEvery.
func (s *session) samplePool(ctx context.Context) {
	for {
		if d, err := s.c.PoolDepth(ctx); err == nil {
			s.poolMu.Lock()
			s.poolSamples = append(s.poolSamples, report.PoolSample{At: s.cfg.Clock.Now().Sub(s.started), Depth: d})
			s.poolMu.Unlock()
		}
		if s.sleep(ctx, s.cfg.SampleEvery) != nil {
			return
		}
	}
}

// stages reads every serving node's stage histograms.
func (s *session) stages(ctx context.Context) map[string]node.StagesReport {
	out := map[string]node.StagesReport{}
	for _, n := range s.c.Nodes {
		if !n.Running() || n.Admin == nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, s.cfg.Launch.CallTimeout)
		r, err := n.Admin.Stages(cctx)
		cancel()
		if err == nil {
			out[n.ID] = r
		}
	}
	return out
}

// refillWait bounds the wait for the pools to refill after the load.
const refillWait = 3 * time.Minute

// collect fills the report: the load's figures, the stages, the CPU per
// signature (after the pools refilled, when refill is set) and the check.
// The wait for the refill and the collection are bounded apart, by
// refillWait and Config.CollectTimeout.
func (s *session) collect(base context.Context, refill bool) error {
	if refill {
		s.waitQuiet(base)
	}
	ctx, cancel := context.WithTimeout(base, s.cfg.CollectTimeout)
	defer cancel()
	rep := s.rep
	cpuTo := s.c.CPU()
	stagesTo := s.stages(ctx)
	s.poolMu.Lock()
	rep.Pool = slices.Clone(s.poolSamples)
	s.poolMu.Unlock()

	var all []*load.Request
	rep.Errors = map[string]int{}
	for _, res := range s.loads {
		all = append(all, res.Requests...)
		rep.Elapsed += res.Elapsed
		for code, n := range res.Refused {
			rep.Errors["submission refused: "+code] += n
		}
		if res.Backlog > 0 {
			rep.Errors["open-loop submissions skipped (backlog)"] += res.Backlog
		}
	}
	signatures := s.summarizeLoad(all)

	var total float64
	for _, name := range slices.Sorted(maps.Keys(cpuTo)) {
		from, ok := s.cpuFrom[name]
		if !ok || cpuTo[name] < from {
			continue // not read when the load began
		}
		sec := (cpuTo[name] - from).Seconds()
		rep.CPU = append(rep.CPU, report.ProcessCPU{Name: name, Seconds: sec})
		total += sec
	}
	if signatures > 0 {
		rep.CPUPerSignature = total / float64(signatures)
	}
	if rep.Bare.Online > 0 {
		rep.Bare.OnlineRatio = float64(rep.Latency.P50) / float64(rep.Bare.Online)
	}
	if rep.Bare.PresignCPU > 0 {
		rep.Bare.PresignRatio = rep.CPUPerSignature / rep.Bare.PresignCPU
	}
	for stage, snaps := range recordedSince(s.stagesFrom, stagesTo) {
		s.stagesKept[stage] = append(s.stagesKept[stage], snaps...)
	}
	rep.Stages = mergeStages(s.stagesKept)
	if rep.FindMax != nil && rep.Bare.PresignCPU > 0 {
		rep.FindMax.Ceiling = float64(cores()) / rep.Bare.PresignCPU
	}
	if s.cfg.Rounds > 0 {
		signingAfter(rep.Faults, s.started, all)
		rep.FaultKinds = summarizeFaults(rep.Faults)
	}
	return s.check(ctx)
}

// waitQuiet waits, bounded by refillWait, until the workspace holds no
// open request (a step of --find-max leaves some) and the pools hold what
// they held when the load began, or their target depth if that is less
// (a pool may run above its target for a while).
func (s *session) waitQuiet(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, refillWait)
	defer cancel()
	want := s.poolFrom
	if s.cfg.Attach == nil {
		want = min(want, s.cfg.Launch.PresignTarget*len(s.users))
	}
	open := []protocol.WsRequestState{protocol.WsRequestState_WS_REQUEST_STATE_PENDING,
		protocol.WsRequestState_WS_REQUEST_STATE_DELIVERED, protocol.WsRequestState_WS_REQUEST_STATE_CLAIMED}
	quiet := func() bool {
		for _, st := range open {
			resp, err := s.c.Workspace.ListRequests(ctx, &protocol.WsListRequestsRequest{State: st, Limit: 1})
			if err != nil || len(resp.GetRequests()) > 0 {
				return false
			}
		}
		d, err := s.c.PoolDepth(ctx)
		return err == nil && d >= want
	}
	for !quiet() {
		if s.sleep(ctx, s.cfg.SampleEvery) != nil {
			s.log.Warn("the cluster did not settle after the load; CPU per signature leaves the rest out", "pool_want", want)
			return
		}
	}
}

// summarizeLoad fills the latency, samples, outcomes and throughput from
// the requests, and returns the signatures made.
func (s *session) summarizeLoad(all []*load.Request) int {
	rep := s.rep
	rep.Outcomes = map[string]int{}
	e2e := newHistogram()
	signatures := 0
	var finished []*load.Request
	for _, q := range all {
		if q.State == "" {
			rep.Outcomes["unfinished"]++
			continue
		}
		rep.Outcomes[q.State]++
		finished = append(finished, q)
		if q.State != q.Expect {
			reason := q.Reason
			if reason == "" {
				reason = "no reason given"
			}
			rep.Errors[fmt.Sprintf("%s %s, expected %s: %s", q.Kind, q.State, q.Expect, reason)]++
		}
		if q.State == "signed" {
			signatures += q.Digests
			e2e.record(q.Latency())
		}
	}
	slices.SortFunc(finished, func(a, b *load.Request) int { return a.Finished.Compare(b.Finished) })
	rep.Samples = make([]report.Sample, 0, len(finished))
	for _, q := range finished {
		rep.Samples = append(rep.Samples, report.Sample{At: q.Finished.Sub(s.started), Latency: q.Latency(), Outcome: q.State, Digests: q.Digests})
	}
	rep.Latency = e2e.summary()
	if rep.Elapsed > 0 {
		rep.Throughput = float64(len(finished)) / rep.Elapsed.Seconds()
	}
	return signatures
}

// histogram is a latency histogram of microseconds from 1 µs to 10
// minutes, as the nodes keep theirs.
type histogram struct{ h *hdrhistogram.Histogram }

func newHistogram() *histogram {
	return &histogram{hdrhistogram.New(1, (10 * time.Minute).Microseconds(), 3)}
}

// record adds d, clamped to the histogram's range.
func (h *histogram) record(d time.Duration) {
	_ = h.h.RecordValue(min(max(d.Microseconds(), 1), h.h.HighestTrackableValue()))
}

func (h *histogram) summary() report.Summary { return summary(h.h) }

// summary reads a histogram of microseconds.
func summary(h *hdrhistogram.Histogram) report.Summary {
	if h == nil || h.TotalCount() == 0 {
		return report.Summary{}
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return report.Summary{
		Count: h.TotalCount(), P50: us(h.ValueAtQuantile(50)), P90: us(h.ValueAtQuantile(90)),
		P99: us(h.ValueAtQuantile(99)), P999: us(h.ValueAtQuantile(99.9)), Max: us(h.Max()),
	}
}

// stageOrder is the order of a request's path through a node.
var stageOrder = []string{"poll", "claim_commit", "callback", "reserve_commit", "online_round", "verification", "presign_slow", "approval", "total"}

// recordedSince returns, by stage, what each node recorded between from
// and to: after minus before, or all of after for a node that restarted
// in between (its counts went down).
func recordedSince(from, to map[string]node.StagesReport) map[string][]*hdrhistogram.Snapshot {
	by := map[string][]*hdrhistogram.Snapshot{}
	for id, after := range to {
		for stage, snap := range after.Stages {
			d, err := hdr.Sub(snap, from[id].Stages[stage])
			if err != nil {
				d = snap
			}
			by[stage] = append(by[stage], d)
		}
	}
	return by
}

// keepStages adds what the nodes ids recorded since the load began (or
// since they last restarted) to the stages kept, before a fault ends
// their processes and, with them, their histograms.
func (s *session) keepStages(ctx context.Context, ids ...string) {
	now := s.stages(ctx)
	for _, id := range ids {
		for stage, snaps := range recordedSince(s.stagesFrom, map[string]node.StagesReport{id: now[id]}) {
			s.stagesKept[stage] = append(s.stagesKept[stage], snaps...)
		}
		delete(s.stagesFrom, id)
	}
}

// mergeStages merges the recordings of every node by stage.
func mergeStages(by map[string][]*hdrhistogram.Snapshot) []report.Stage {
	var out []report.Stage
	names := slices.Sorted(maps.Keys(by))
	slices.SortStableFunc(names, func(a, b string) int {
		ia, ib := slices.Index(stageOrder, a), slices.Index(stageOrder, b)
		if ia < 0 {
			ia = len(stageOrder)
		}
		if ib < 0 {
			ib = len(stageOrder)
		}
		return ia - ib
	})
	for _, name := range names {
		h, err := hdr.Merge(by[name]...)
		if err != nil || h == nil || h.TotalCount() == 0 {
			continue
		}
		out = append(out, report.Stage{Name: name, Summary: summary(h)})
	}
	return out
}

// check reads the records from outside the nodes and judges them.
func (s *session) check(ctx context.Context) error {
	recs, err := check.FromWorkspace(ctx, s.c.Workspace)
	if err != nil {
		return err
	}
	for _, n := range s.c.Nodes {
		if !n.Running() || n.Admin == nil {
			continue
		}
		v, err := check.FromNode(ctx, n.Admin)
		if err != nil {
			return fmt.Errorf("harness: %s's records: %w", n.ID, err)
		}
		recs.Nodes = append(recs.Nodes, v)
		// After the FSM view, so that the log reaches at least as far.
		l, err := check.FromNodeLog(ctx, n.Admin)
		if err != nil {
			return fmt.Errorf("harness: %s's raft log: %w", n.ID, err)
		}
		recs.Logs = append(recs.Logs, l)
		a, err := check.FromNodeAudit(ctx, n.Admin)
		if err != nil {
			return fmt.Errorf("harness: %s's audit log: %w", n.ID, err)
		}
		recs.Audits = append(recs.Audits, a)
	}
	if s.c.CallbackLog != "" {
		f, err := os.Open(s.c.CallbackLog)
		if err != nil {
			return err
		}
		defer f.Close()
		if recs.Callback, err = check.ReadCallbackLog(f); err != nil {
			return err
		}
	}
	v := check.Check(recs)
	s.rep.Check = report.Check{OK: v.OK(), Summary: strings.SplitN(v.String(), "\n", 2)[0]}
	for _, x := range v.Violations {
		s.rep.Check.Violations = append(s.rep.Check.Violations, x.String())
	}
	return nil
}
