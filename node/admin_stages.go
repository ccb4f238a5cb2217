package node

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// PathStages answers (GET) the HDR histograms of the node's signing
// stages: a StagesReport.
const PathStages = "/v1/stages"

// maxStageCounts bounds the counts of all the histograms a StagesReport
// decodes, as maxAdminAnswer bounds its bytes: a histogram's
// configuration, not the length of its JSON, sets how many counts it
// holds. A node's report holds about 200,000.
const maxStageCounts = 1 << 22

// maxStageLowest bounds the lowest trackable value of a histogram that a
// StagesReport decodes (a node's is 1): hdrhistogram.New shifts its
// bucket count left by the value's magnitude, which must not overflow.
const maxStageLowest = 1 << 40

// StagesReport is what GET /v1/stages answers: an HDR histogram of each
// signing stage, keyed by the stage labels of the
// coterie_signing_stage_seconds metric (poll, claim_commit, callback,
// reserve_commit, online_round, verification, presign_slow, approval,
// total), each holding every duration, in microseconds, that the node
// recorded since it started serving. HDR histograms of one configuration
// merge and subtract exactly, which the metric's buckets do not, so
// `coterie bench` reads every node's before and after its load and
// combines the differences (package bench/hdr).
//
// In JSON a histogram is its configuration and its nonzero counts as
// [index, count] pairs in index order, rather than hdrhistogram's Snapshot
// with every count, mostly zeros (about 21,000 per stage).
type StagesReport struct {
	NodeID string
	// Stages is empty until the node serves.
	Stages map[string]*hdrhistogram.Snapshot
}

// stagesJSON is a StagesReport in JSON.
type stagesJSON struct {
	NodeID string                        `json:"node_id"`
	Unit   string                        `json:"unit"`
	Stages map[string]stageHistogramJSON `json:"stages"`
}

// stageHistogramJSON is one histogram of a StagesReport in JSON.
type stageHistogramJSON struct {
	LowestTrackableValue  int64 `json:"lowest_trackable_value"`
	HighestTrackableValue int64 `json:"highest_trackable_value"`
	SignificantFigures    int64 `json:"significant_figures"`
	// Counts are the nonzero counts, as [index, count] pairs by index.
	Counts [][2]int64 `json:"counts"`
}

// stagesUnit is the unit of every value in a StagesReport.
const stagesUnit = "us"

// MarshalJSON implements json.Marshaler. It leaves out nil histograms.
func (r StagesReport) MarshalJSON() ([]byte, error) {
	out := stagesJSON{NodeID: r.NodeID, Unit: stagesUnit, Stages: make(map[string]stageHistogramJSON, len(r.Stages))}
	for name, s := range r.Stages {
		if s == nil {
			continue
		}
		h := stageHistogramJSON{LowestTrackableValue: s.LowestTrackableValue, HighestTrackableValue: s.HighestTrackableValue,
			SignificantFigures: s.SignificantFigures, Counts: [][2]int64{}}
		for i, c := range s.Counts {
			if c != 0 {
				h.Counts = append(h.Counts, [2]int64{int64(i), c})
			}
		}
		out.Stages[name] = h
	}
	return json.Marshal(out)
}

// UnmarshalJSON implements json.Unmarshaler. It refuses another unit than
// microseconds, a configuration that hdrhistogram would not keep as it is,
// an index out of the histogram's range or out of order, a count that is
// not positive, and histograms that hold more than maxStageCounts counts
// together.
func (r *StagesReport) UnmarshalJSON(b []byte) error {
	var in stagesJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	if in.Unit != stagesUnit {
		return fmt.Errorf("node: stage histograms in %q, want %q", in.Unit, stagesUnit)
	}
	out := StagesReport{NodeID: in.NodeID, Stages: make(map[string]*hdrhistogram.Snapshot, len(in.Stages))}
	total := 0
	for name, h := range in.Stages {
		s, err := h.snapshot()
		if err != nil {
			return fmt.Errorf("node: stage %q: %w", name, err)
		}
		if total += len(s.Counts); total > maxStageCounts {
			return fmt.Errorf("node: stage histograms hold more than %d counts", maxStageCounts)
		}
		out.Stages[name] = s
	}
	*r = out
	return nil
}

// snapshot returns h as a Snapshot with every count of its configuration.
func (h stageHistogramJSON) snapshot() (*hdrhistogram.Snapshot, error) {
	// hdrhistogram.New would change a configuration outside these bounds,
	// or overflow and loop forever on a lowest value near the int64 limit.
	if h.SignificantFigures < 1 || h.SignificantFigures > 5 || h.LowestTrackableValue < 1 ||
		h.LowestTrackableValue > maxStageLowest || h.HighestTrackableValue/2 < h.LowestTrackableValue {
		return nil, fmt.Errorf("bad histogram configuration: values %d to %d, %d significant figures",
			h.LowestTrackableValue, h.HighestTrackableValue, h.SignificantFigures)
	}
	s := hdrhistogram.New(h.LowestTrackableValue, h.HighestTrackableValue, int(h.SignificantFigures)).Export()
	next := int64(0)
	for _, p := range h.Counts {
		i, c := p[0], p[1]
		if i < next || i >= int64(len(s.Counts)) || c <= 0 {
			return nil, fmt.Errorf("bad count %d at index %d of %d", c, i, len(s.Counts))
		}
		s.Counts[i] = c
		next = i + 1
	}
	return s, nil
}

// Stages returns the HDR histograms of the node's signing stages.
func (n *Node) Stages() StagesReport {
	r := StagesReport{NodeID: n.cfg.NodeID, Stages: map[string]*hdrhistogram.Snapshot{}}
	n.mu.Lock()
	srv := n.serve
	n.mu.Unlock()
	if srv != nil {
		r.Stages = srv.stages()
	}
	return r
}

func (a *adminServer) stages(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.n.Stages())
}
