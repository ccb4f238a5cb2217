package actors

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/coterie-mpc/coterie/cluster"
)

// Metrics are the actors' Prometheus collectors, and an HDR histogram of
// each signing stage beside StageSeconds. The node registers the
// collectors on its /metrics endpoint by passing its registerer to
// NewMetrics, and serves the HDR histograms (StageSnapshots) on its admin
// API: histograms of one configuration merge and subtract exactly, which
// Prometheus buckets do not, so a benchmark can combine every node's.
// Labels never hold secrets: stages, outcomes, key record ids.
//
// A Metrics is safe for concurrent use.
type Metrics struct {
	// StageSeconds is the signing latency by stage: poll, claim_commit,
	// callback, reserve_commit, online_round, verification, presign_slow
	// (an on-demand presign when the pool was empty), approval, total.
	// Every value it observes is recorded in the stage's HDR histogram too.
	StageSeconds *prometheus.HistogramVec
	// Requests counts requests by terminal outcome (signed, approved,
	// rejected, failed).
	Requests *prometheus.CounterVec
	// PoolDepth is the available presignatures per key.
	PoolDepth *prometheus.GaugeVec
	// Presigns counts background presign jobs by result (ok, error).
	Presigns *prometheus.CounterVec
	// CallbackSeconds is the latency of one callback attempt.
	CallbackSeconds prometheus.Histogram
	// CallbackOutcomes counts callback attempts by outcome (approve, reject,
	// retry, ignore, auto, error).
	CallbackOutcomes *prometheus.CounterVec
	// Failures counts actor crashes that a supervisor handled, by
	// directive (restart, stop, escalate).
	Failures *prometheus.CounterVec
	// Sessions is the number of Sessions running on this node.
	Sessions prometheus.Gauge

	// stages holds the HDR histogram of each of stageNames; the map is
	// not modified after NewMetrics.
	stages map[string]*stageRecorder
}

// The stage label values of Metrics.StageSeconds.
const (
	stagePoll          = "poll"
	stageClaimCommit   = "claim_commit"
	stageCallback      = "callback"
	stageReserveCommit = "reserve_commit"
	stageOnlineRound   = "online_round"
	stageVerification  = "verification"
	stagePresignSlow   = "presign_slow"
	stageApproval      = "approval"
	stageTotal         = "total"
)

// stageNames are the stages that have an HDR histogram: every stage label
// of Metrics.StageSeconds.
var stageNames = [...]string{stagePoll, stageClaimCommit, stageCallback, stageReserveCommit, stageOnlineRound,
	stageVerification, stagePresignSlow, stageApproval, stageTotal}

// The stage HDR histograms' configuration: microseconds from 1 µs to 10
// minutes, to 3 significant figures (a value is off by at most 0.1%). A
// longer stage is recorded as 10 minutes, so that the histogram counts
// every value StageSeconds observes.
const (
	stageLowestMicros  = 1
	stageHighestMicros = int64(10 * time.Minute / time.Microsecond)
	stageSigFigs       = 3
)

// stageRecorder is one stage's HDR histogram.
type stageRecorder struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func (r *stageRecorder) record(d time.Duration) {
	v := min(d.Microseconds(), stageHighestMicros)
	r.mu.Lock()
	defer r.mu.Unlock()
	// v is within the histogram's range, so this cannot fail.
	_ = r.h.RecordValue(v)
}

func (r *stageRecorder) snapshot() *hdrhistogram.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.h.Export() // a copy of the counts
}

// NewMetrics returns the actors' collectors, registered with reg when reg is
// not nil. It fails if reg already holds collectors of the same names.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	m := &Metrics{
		StageSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "coterie", Name: "signing_stage_seconds",
			Help:    "Latency of each stage of a request on this node.",
			Buckets: buckets,
		}, []string{"stage"}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coterie", Name: "requests_total",
			Help: "Requests this node brought to a terminal outcome, by outcome.",
		}, []string{"outcome"}),
		PoolDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "coterie", Name: "presignature_pool_depth",
			Help: "Available presignatures per key, as this node's replica sees them.",
		}, []string{"key"}),
		Presigns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coterie", Name: "presign_jobs_total",
			Help: "Background presign jobs by result.",
		}, []string{"result"}),
		CallbackSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "coterie", Name: "callback_seconds",
			Help:    "Latency of one callback-handler attempt.",
			Buckets: buckets,
		}),
		CallbackOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coterie", Name: "callback_outcomes_total",
			Help: "Callback-handler attempts by outcome.",
		}, []string{"outcome"}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coterie", Name: "actor_failures_total",
			Help: "Actor crashes handled by a supervisor, by directive.",
		}, []string{"directive"}),
		Sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "coterie", Name: "sessions",
			Help: "Sessions running on this node.",
		}),
		stages: make(map[string]*stageRecorder, len(stageNames)),
	}
	for _, name := range stageNames {
		m.stages[name] = &stageRecorder{h: hdrhistogram.New(stageLowestMicros, stageHighestMicros, stageSigFigs)}
	}
	// The label values known in advance start at 0, so that their series
	// exist (and rate() sees their first increase) before anything happens.
	for _, o := range []cluster.Outcome{cluster.OutcomeSigned, cluster.OutcomeApproved, cluster.OutcomeRejected, cluster.OutcomeFailed, cluster.OutcomeIgnored} {
		m.Requests.WithLabelValues(o.String())
	}
	for _, r := range []string{"ok", "error"} {
		m.Presigns.WithLabelValues(r)
	}
	for _, d := range []string{"restart", exhaustedStop.String(), exhaustedEscalate.String(), "halt"} {
		m.Failures.WithLabelValues(d)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.StageSeconds, m.Requests, m.PoolDepth, m.Presigns,
			m.CallbackSeconds, m.CallbackOutcomes, m.Failures, m.Sessions} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// StageSnapshots returns a copy of each stage's HDR histogram, keyed by
// the stage labels of StageSeconds, every stage included: each holds every
// duration recorded since NewMetrics, in microseconds (1 µs to 10 minutes,
// 3 significant figures). It is safe to call while stages are recorded;
// the snapshots are the caller's.
func (m *Metrics) StageSnapshots() map[string]*hdrhistogram.Snapshot {
	out := make(map[string]*hdrhistogram.Snapshot, len(m.stages))
	for name, r := range m.stages {
		out[name] = r.snapshot()
	}
	return out
}

// stage records d as the duration of stage name, one of stageNames, in
// StageSeconds and in the stage's HDR histogram.
func (m *Metrics) stage(name string, d time.Duration) {
	if d < 0 {
		d = 0
	}
	m.StageSeconds.WithLabelValues(name).Observe(d.Seconds())
	m.stages[name].record(d)
}
