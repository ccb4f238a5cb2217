package actors

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the actors' Prometheus collectors. The node registers them
// on its /metrics endpoint by passing its registerer to NewMetrics. Labels
// never hold secrets: stages, outcomes, key record ids.
type Metrics struct {
	// StageSeconds is the signing latency by stage: poll, claim_commit,
	// callback, reserve_commit, online_round, verification, presign_slow
	// (an on-demand presign when the pool was empty), approval, total.
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

func (m *Metrics) stage(name string, d time.Duration) {
	if d < 0 {
		d = 0
	}
	m.StageSeconds.WithLabelValues(name).Observe(d.Seconds())
}
