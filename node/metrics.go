package node

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/coterie-mpc/coterie/cluster"
)

// nodeMetrics are the collectors the node itself owns; the actors
// register theirs on the same registry.
type nodeMetrics struct {
	registry *prometheus.Registry
	// raftApply times each proposal from the call to its commit and local
	// apply, by command and result.
	raftApply *prometheus.HistogramVec
	users     prometheus.GaugeFunc
	ready     prometheus.GaugeFunc
}

func newNodeMetrics(users func() float64, ready func() float64) *nodeMetrics {
	m := &nodeMetrics{
		registry: prometheus.NewRegistry(),
		raftApply: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "coterie",
			Subsystem: "raft",
			Name:      "apply_seconds",
			Help:      "Time from proposing a cluster command to its commit and local apply, by command and result.",
			Buckets:   []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"command", "result"}),
		users: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "coterie", Name: "api_users", Help: "Paired API users this node serves.",
		}, users),
		ready: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "coterie", Name: "node_ready", Help: "1 when the node is serving, 0 otherwise.",
		}, ready),
	}
	m.registry.MustRegister(m.raftApply, m.users, m.ready,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watchLasting exports whether the node's kept copies of its lasting files
// are stale (storage.parent or bucket): 1 while saves fail.
func (m *nodeMetrics) watchLasting(stale func() float64) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "coterie", Name: "node_lasting_files_stale",
		Help: "1 while the node fails to save its sealed store and data key file to storage.parent or storage.bucket.",
	}, stale))
}

// result names an error for a metric label: a fixed set of values, never
// an error's text.
func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, cluster.ErrUncertain):
		return "uncertain"
	case errors.Is(err, cluster.ErrNotLeader), errors.Is(err, cluster.ErrTimeout),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "unavailable"
	case errors.Is(err, cluster.ErrClaimed), errors.Is(err, cluster.ErrNotOwner),
		errors.Is(err, cluster.ErrCompleted), errors.Is(err, cluster.ErrPresignatureUsed),
		errors.Is(err, cluster.ErrPresignatureBurned), errors.Is(err, cluster.ErrUnknownPresignature),
		errors.Is(err, cluster.ErrUnknownRequest), errors.Is(err, cluster.ErrRecordExists),
		errors.Is(err, cluster.ErrPresignatureExists):
		return "refused"
	default:
		return "error"
	}
}

// TimedCluster is the node's *cluster.Cluster with every proposal timed
// into the raft apply latency histogram. It is what the node hands to the
// actors and uses itself, so /metrics sees every commit. It is safe for
// concurrent use.
type TimedCluster struct {
	*cluster.Cluster
	hist *prometheus.HistogramVec
}

func (t *TimedCluster) observe(command string, start time.Time, err error) {
	t.hist.WithLabelValues(command, result(err)).Observe(time.Since(start).Seconds())
}

// Claim implements the actors' cluster interface, timed.
func (t *TimedCluster) Claim(ctx context.Context, request, apiUser string) error {
	start := time.Now()
	err := t.Cluster.Claim(ctx, request, apiUser)
	t.observe("claim", start, err)
	return err
}

// Reserve is Cluster.Reserve, timed.
func (t *TimedCluster) Reserve(ctx context.Context, request string, p cluster.PresignatureRef) error {
	start := time.Now()
	err := t.Cluster.Reserve(ctx, request, p)
	t.observe("reserve", start, err)
	return err
}

// Complete is Cluster.Complete, timed.
func (t *TimedCluster) Complete(ctx context.Context, request string, outcome cluster.Outcome, reason string) error {
	start := time.Now()
	err := t.Cluster.Complete(ctx, request, outcome, reason)
	t.observe("complete", start, err)
	return err
}

// Release is Cluster.Release, timed.
func (t *TimedCluster) Release(ctx context.Context, node string) error {
	start := time.Now()
	err := t.Cluster.Release(ctx, node)
	t.observe("release", start, err)
	return err
}

// ReserveNext is Cluster.ReserveNext, timed.
func (t *TimedCluster) ReserveNext(ctx context.Context, request, key string) (cluster.PresignatureRef, error) {
	start := time.Now()
	ref, err := t.Cluster.ReserveNext(ctx, request, key)
	t.observe("reserve", start, err)
	return ref, err
}

// AddPresignatures is Cluster.AddPresignatures, timed.
func (t *TimedCluster) AddPresignatures(ctx context.Context, key, reserveFor string, seal func(uint64) ([]cluster.SealedPresignature, error)) error {
	start := time.Now()
	err := t.Cluster.AddPresignatures(ctx, key, reserveFor, seal)
	t.observe("presignatures_added", start, err)
	return err
}

// AddAPIUser is Cluster.AddAPIUser, timed.
func (t *TimedCluster) AddAPIUser(ctx context.Context, r cluster.Record) error {
	start := time.Now()
	err := t.Cluster.AddAPIUser(ctx, r)
	t.observe("api_user_added", start, err)
	return err
}

// AddKeyRecord is Cluster.AddKeyRecord, timed.
func (t *TimedCluster) AddKeyRecord(ctx context.Context, r cluster.Record) error {
	start := time.Now()
	err := t.Cluster.AddKeyRecord(ctx, r)
	t.observe("key_record_added", start, err)
	return err
}
