package console

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/internal/hdr"
)

// RecorderConfig configures a Recorder: its windows and bounds.
type RecorderConfig struct {
	Clock clock.Clock
	// OutcomeWindow is how far back requests are counted by outcome, in
	// buckets of OutcomeStep.
	OutcomeWindow time.Duration
	OutcomeStep   time.Duration
	// RefillWindow is how far back added presignatures are counted, in
	// buckets of OutcomeStep.
	RefillWindow time.Duration
	// LatencyStep is how often the stage histograms are sampled, and
	// LatencyWindow how many samples are kept.
	LatencyStep   time.Duration
	LatencyWindow time.Duration
	// MaxDecisions, MaxFailovers, MaxKeys and MaxPending bound the
	// decisions and failovers kept, the users and keys counted, and the
	// released requests waited for.
	MaxDecisions int
	MaxFailovers int
	MaxKeys      int
	MaxPending   int
}

// DefaultRecorderConfig returns the windows the console shows: outcomes
// over the last hour by minute, refills over 10 minutes, stage latency
// every 10 seconds over 10 minutes.
func DefaultRecorderConfig() RecorderConfig {
	return RecorderConfig{
		Clock:         clock.Real(),
		OutcomeWindow: time.Hour,
		OutcomeStep:   time.Minute,
		RefillWindow:  10 * time.Minute,
		LatencyStep:   10 * time.Second,
		LatencyWindow: 10 * time.Minute,
		MaxDecisions:  15,
		MaxFailovers:  20,
		MaxKeys:       1024,
		MaxPending:    4096,
	}
}

// Validate reports every problem of c at once.
func (c RecorderConfig) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Clock == nil {
		add("Clock is required")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"OutcomeWindow", c.OutcomeWindow}, {"OutcomeStep", c.OutcomeStep}, {"RefillWindow", c.RefillWindow},
		{"LatencyStep", c.LatencyStep}, {"LatencyWindow", c.LatencyWindow}} {
		if d.v <= 0 {
			add("%s must be positive", d.name)
		}
	}
	if c.OutcomeStep > 0 && (c.OutcomeWindow/c.OutcomeStep > maxBuckets || c.RefillWindow/c.OutcomeStep > maxBuckets) {
		add("OutcomeWindow and RefillWindow must hold at most %d OutcomeSteps", maxBuckets)
	}
	if c.LatencyStep > 0 && c.LatencyWindow/c.LatencyStep > maxBuckets {
		add("LatencyWindow must hold at most %d LatencySteps", maxBuckets)
	}
	for _, b := range []struct {
		name string
		v    int
	}{{"MaxDecisions", c.MaxDecisions}, {"MaxFailovers", c.MaxFailovers}, {"MaxKeys", c.MaxKeys}, {"MaxPending", c.MaxPending}} {
		if b.v <= 0 {
			add("%s must be positive", b.name)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

// maxBuckets bounds the buckets of one window.
const maxBuckets = 1000

// maxStages bounds the stages whose latency is kept.
const maxStages = 32

// Recorder keeps the console's rolling windows: requests by outcome per
// user, presignatures added per key, the last decisions, the failovers and
// each stage's latency. The node feeds it the cluster's events as its
// replica applies them; everything it keeps is bounded by its config, not
// by the traffic. It keeps nothing across restarts.
//
// A Recorder is safe for concurrent use.
type Recorder struct {
	cfg     RecorderConfig
	started time.Time

	mu        sync.Mutex
	outcomes  map[string]*buckets // by user
	added     map[string]*buckets // by key
	decisions *ring[Decided]
	failovers *ring[*failover]
	// pending are the released requests not claimed again yet.
	pending map[string]pendingClaim
	// latency holds each stage's points; last, its cumulative histogram
	// at the previous sample.
	latency map[string]*ring[Point]
	last    map[string]*hdrhistogram.Snapshot
}

// failover is a Failover being filled in as its requests are claimed.
type failover struct {
	Failover
	index     uint64
	totalWait time.Duration
	maxWait   time.Duration
}

type pendingClaim struct {
	f  *failover
	at time.Time
}

// NewRecorder returns an empty Recorder.
func NewRecorder(cfg RecorderConfig) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Recorder{
		cfg: cfg, started: cfg.Clock.Now(),
		outcomes: map[string]*buckets{}, added: map[string]*buckets{},
		decisions: newRing[Decided](cfg.MaxDecisions), failovers: newRing[*failover](cfg.MaxFailovers),
		pending: map[string]pendingClaim{},
		latency: map[string]*ring[Point]{}, last: map[string]*hdrhistogram.Snapshot{},
	}, nil
}

// Completed records a request's outcome, at d.At (the time its Complete
// was proposed); a zero d.At means now. A request already among the last
// decisions is not counted twice.
func (r *Recorder) Completed(d Decided) {
	if d.At.IsZero() {
		d.At = r.cfg.Clock.Now()
	}
	d.At = d.At.UTC()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i < r.decisions.len(); i++ {
		if r.decisions.at(i).ID == d.ID {
			return
		}
	}
	r.decisions.push(d)
	b := r.keyed(r.outcomes, d.User, r.cfg.OutcomeWindow)
	if b != nil {
		b.add(d.At, d.Outcome, 1)
	}
}

// keyed returns m's buckets of key, created with window when missing, or
// nil when m holds MaxKeys keys already.
func (r *Recorder) keyed(m map[string]*buckets, key string, window time.Duration) *buckets {
	b, ok := m[key]
	if !ok {
		if len(m) >= r.cfg.MaxKeys {
			return nil
		}
		b = newBuckets(r.cfg.OutcomeStep, window)
		m[key] = b
	}
	return b
}

// PresignaturesAdded records n presignatures added to key's pool now.
func (r *Recorder) PresignaturesAdded(key string, n int) {
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := r.keyed(r.added, key, r.cfg.RefillWindow); b != nil {
		b.add(now, "added", n)
	}
}

// Released records that the Release at raft index released request from
// node: the releases of one command, which share their index, make one
// failover.
func (r *Recorder) Released(index uint64, node, request string) {
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var f *failover
	if n := r.failovers.len(); n > 0 {
		if last := *r.failovers.at(n - 1); last.index == index && last.Node == node {
			f = last
		}
	}
	if f == nil {
		if r.failovers.len() == r.cfg.MaxFailovers {
			r.forget(*r.failovers.at(0))
		}
		f = &failover{Failover: Failover{At: now.UTC(), Node: node}, index: index}
		r.failovers.push(f)
	}
	f.Moved++
	if len(r.pending) < r.cfg.MaxPending {
		r.pending[request] = pendingClaim{f: f, at: now}
	}
}

// forget drops the pending claims of f, which is leaving the ring.
func (r *Recorder) forget(f *failover) {
	for id, p := range r.pending {
		if p.f == f {
			delete(r.pending, id)
		}
	}
}

// Claimed records that node claimed request: when a failover released
// it, that failover's request resumed.
func (r *Recorder) Claimed(node, request string) {
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pending[request]
	if !ok {
		return
	}
	delete(r.pending, request)
	f, wait := p.f, now.Sub(p.at)
	f.Resumed++
	if f.To == nil {
		f.To = map[string]int{}
	}
	f.To[node]++
	f.totalWait += wait
	f.maxWait = max(f.maxWait, wait)
}

// SampleStages takes the cumulative histograms of the signing stages
// (microseconds, as the actors record them) and records, for each stage,
// what was recorded since the previous sample as one latency point. A
// histogram that went down (its node restarted the actors) counts whole.
func (r *Recorder) SampleStages(cumulative map[string]*hdrhistogram.Snapshot) {
	now := r.cfg.Clock.Now().UTC()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(cumulative)) {
		cur := cumulative[name]
		if cur == nil {
			continue
		}
		pts, ok := r.latency[name]
		if !ok {
			if len(r.latency) >= maxStages {
				continue
			}
			pts = newRing[Point](int(r.cfg.LatencyWindow / r.cfg.LatencyStep))
			r.latency[name] = pts
		}
		diff, err := hdr.Sub(cur, r.last[name])
		if err != nil {
			diff = cur
		}
		r.last[name] = cur
		pts.push(point(now, diff))
	}
}

// point summarises the durations of s, in microseconds, as a Point.
func point(at time.Time, s *hdrhistogram.Snapshot) Point {
	h := hdrhistogram.Import(s)
	p := Point{At: at, Count: h.TotalCount()}
	if p.Count == 0 {
		return p
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	p.P50, p.P90, p.P99, p.Max = ms(h.ValueAtQuantile(50)), ms(h.ValueAtQuantile(90)), ms(h.ValueAtQuantile(99)), ms(h.Max())
	return p
}

// SampleEvery calls SampleStages with stages() once per LatencyStep, on
// the Recorder's clock, until the returned function is called. stages may
// return nil while there is nothing to sample.
func (r *Recorder) SampleEvery(stages func() map[string]*hdrhistogram.Snapshot) (stop func()) {
	var mu sync.Mutex
	stopped := false
	var timer clock.Timer
	var tick func()
	tick = func() {
		if s := stages(); s != nil {
			r.SampleStages(s)
		}
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			timer = r.cfg.Clock.AfterFunc(r.cfg.LatencyStep, tick)
		}
	}
	mu.Lock()
	timer = r.cfg.Clock.AfterFunc(r.cfg.LatencyStep, tick)
	mu.Unlock()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		timer.Stop()
	}
}

// Outcomes returns user's requests by outcome over the outcome window.
func (r *Recorder) Outcomes(user string) map[string]int {
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.outcomes[user]
	if !ok {
		return map[string]int{}
	}
	return b.sum(now, r.cfg.OutcomeWindow)
}

// AddedPerMinute returns the presignatures added to key per minute over
// the refill window, or over the time since the Recorder started when
// that is shorter.
func (r *Recorder) AddedPerMinute(key string) float64 {
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.added[key]
	if !ok {
		return 0
	}
	span := min(r.cfg.RefillWindow, now.Sub(r.started))
	if span < time.Minute {
		span = time.Minute
	}
	return float64(b.sum(now, r.cfg.RefillWindow)["added"]) / span.Minutes()
}

// Decisions returns the last decisions, the newest first.
func (r *Recorder) Decisions() []Decided {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.decisions.newestFirst(r.cfg.MaxDecisions)
}

// Failovers returns the failovers kept, the newest first.
func (r *Recorder) Failovers() []Failover {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Failover, 0, r.failovers.len())
	for _, f := range r.failovers.newestFirst(r.cfg.MaxFailovers) {
		c := f.Failover
		c.To = maps.Clone(f.To)
		if f.Resumed > 0 {
			c.MeanWaitSeconds = (f.totalWait / time.Duration(f.Resumed)).Seconds()
			c.MaxWaitSeconds = f.maxWait.Seconds()
		}
		out = append(out, c)
	}
	return out
}

// Latency returns each stage's latency points, stages by name, leaving
// out the stages that recorded nothing within the window.
func (r *Recorder) Latency() Latency {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := Latency{StepSeconds: r.cfg.LatencyStep.Seconds(), WindowSeconds: r.cfg.LatencyWindow.Seconds(), Stages: []StageSeries{}}
	for _, name := range slices.Sorted(maps.Keys(r.latency)) {
		pts := r.latency[name]
		s := StageSeries{Stage: name, Points: make([]Point, 0, pts.len())}
		var count int64
		for i := 0; i < pts.len(); i++ {
			s.Points = append(s.Points, *pts.at(i))
			count += pts.at(i).Count
		}
		if count > 0 {
			l.Stages = append(l.Stages, s)
		}
	}
	return l
}
