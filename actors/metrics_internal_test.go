package actors

import (
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// promStageCount returns how many values StageSeconds observed for stage.
func promStageCount(t *testing.T, m *Metrics, stage string) uint64 {
	t.Helper()
	var out dto.Metric
	if err := m.StageSeconds.WithLabelValues(stage).(prometheus.Metric).Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.GetHistogram().GetSampleCount()
}

// TestStageSnapshots records durations of a stage and reads them back from
// its HDR histogram: the count matches StageSeconds', each quantile is the
// recorded value to within 0.1%, negative durations count as 0, those past
// 10 minutes as 10 minutes, and the other stages stay empty.
func TestStageSnapshots(t *testing.T) {
	tests := []struct {
		name     string
		stage    string
		record   []time.Duration
		quantile float64
		want     time.Duration
		max      time.Duration
	}{
		{name: "one value", stage: stageOnlineRound, record: []time.Duration{12345 * time.Microsecond},
			quantile: 50, want: 12345 * time.Microsecond, max: 12345 * time.Microsecond},
		{name: "median of three", stage: stageTotal, record: []time.Duration{3 * time.Millisecond, time.Second, 40 * time.Millisecond},
			quantile: 50, want: 40 * time.Millisecond, max: time.Second},
		{name: "p99 of a hundred", stage: stagePoll, record: spread(100, 250*time.Microsecond),
			quantile: 99, want: 99 * 250 * time.Microsecond, max: 100 * 250 * time.Microsecond},
		{name: "negative is zero", stage: stageCallback, record: []time.Duration{-time.Second},
			quantile: 100, want: 0, max: 0},
		{name: "sub-microsecond is zero", stage: stageVerification, record: []time.Duration{800 * time.Nanosecond},
			quantile: 100, want: 0, max: 0},
		{name: "past the range is 10 minutes", stage: stageApproval, record: []time.Duration{time.Hour, 10 * time.Minute},
			quantile: 50, want: 10 * time.Minute, max: 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMetrics(nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range tt.record {
				m.stage(tt.stage, d)
			}
			snaps := m.StageSnapshots()
			if len(snaps) != len(stageNames) {
				t.Fatalf("%d snapshots, want one per stage (%d)", len(snaps), len(stageNames))
			}
			for _, name := range stageNames {
				s := snaps[name]
				if s == nil || s.LowestTrackableValue != stageLowestMicros || s.HighestTrackableValue != stageHighestMicros ||
					s.SignificantFigures != stageSigFigs {
					t.Fatalf("%s: snapshot %+v", name, s)
				}
				if name == tt.stage {
					continue
				}
				if n := hdrhistogram.Import(s).TotalCount(); n != 0 {
					t.Errorf("%s holds %d values; only %s was recorded", name, n, tt.stage)
				}
			}
			h := hdrhistogram.Import(snaps[tt.stage])
			if n := h.TotalCount(); n != int64(len(tt.record)) || uint64(n) != promStageCount(t, m, tt.stage) {
				t.Fatalf("count %d, want %d, as StageSeconds' %d", n, len(tt.record), promStageCount(t, m, tt.stage))
			}
			within := func(what string, got int64, want time.Duration) {
				w := want.Microseconds()
				if !h.ValuesAreEquivalent(got, w) && (got < w-w/1000 || got > w+w/1000) {
					t.Errorf("%s %d µs, want %d µs within 0.1%%", what, got, w)
				}
			}
			within("quantile", h.ValueAtQuantile(tt.quantile), tt.want)
			within("max", h.Max(), tt.max)
		})
	}
}

// spread returns n durations: step, 2*step, ... n*step.
func spread(n int, step time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * step
	}
	return out
}

// TestStageSnapshotsConcurrent takes snapshots while goroutines record
// (for the race detector): a snapshot is a copy that later recording does
// not change, and the last ones hold every value.
func TestStageSnapshotsConcurrent(t *testing.T) {
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	first := m.StageSnapshots()[stageTotal]
	const writers, each = 4, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m.stage(stageNames[(w+i)%len(stageNames)], time.Duration(i)*time.Millisecond)
			}
		}()
	}
	for range 20 {
		_ = hdrhistogram.Import(m.StageSnapshots()[stageTotal]).TotalCount()
	}
	wg.Wait()
	var total int64
	for _, s := range m.StageSnapshots() {
		total += hdrhistogram.Import(s).TotalCount()
	}
	if total != writers*each {
		t.Fatalf("%d values in the snapshots, want %d", total, writers*each)
	}
	if n := hdrhistogram.Import(first).TotalCount(); n != 0 {
		t.Fatalf("a snapshot taken before any recording holds %d values", n)
	}
}
