package node

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// testSnapshot returns a snapshot of the actors' stage configuration
// holding values (microseconds).
func testSnapshot(values ...int64) *hdrhistogram.Snapshot {
	h := hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	for _, v := range values {
		_ = h.RecordValue(v)
	}
	return h.Export()
}

// TestStagesReportJSON encodes reports and decodes them back, and refuses
// what a node would not send.
func TestStagesReportJSON(t *testing.T) {
	r := StagesReport{NodeID: "n1", Stages: map[string]*hdrhistogram.Snapshot{
		"total": testSnapshot(1, 1, 250, 17_000, 599_999_999), "poll": testSnapshot()}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 1000 {
		t.Fatalf("a report of 5 values is %d bytes: %s", len(b), b)
	}
	var got StagesReport
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip of %s:\n got %+v\nwant %+v", b, got, r)
	}

	cfg := `"lowest_trackable_value":1,"highest_trackable_value":600000000,"significant_figures":3`
	tests := []struct {
		name, json, err string
	}{
		{"another unit", `{"node_id":"n1","unit":"ms","stages":{}}`, "want \"us\""},
		{"no unit", `{"node_id":"n1","stages":{}}`, "want \"us\""},
		{"zero significant figures", `{"unit":"us","stages":{"total":{"lowest_trackable_value":1,"highest_trackable_value":1000,"significant_figures":0,"counts":[]}}}`, "configuration"},
		{"six significant figures", `{"unit":"us","stages":{"total":{"lowest_trackable_value":1,"highest_trackable_value":1000,"significant_figures":6,"counts":[]}}}`, "configuration"},
		{"lowest zero", `{"unit":"us","stages":{"total":{"lowest_trackable_value":0,"highest_trackable_value":1000,"significant_figures":3,"counts":[]}}}`, "configuration"},
		{"highest below twice lowest", `{"unit":"us","stages":{"total":{"lowest_trackable_value":600,"highest_trackable_value":1000,"significant_figures":3,"counts":[]}}}`, "configuration"},
		{"lowest near the int64 limit", `{"unit":"us","stages":{"total":{"lowest_trackable_value":9223372036854775807,"highest_trackable_value":9223372036854775807,"significant_figures":3,"counts":[]}}}`, "configuration"},
		{"lowest past the bound", `{"unit":"us","stages":{"total":{"lowest_trackable_value":4611686018427387904,"highest_trackable_value":9223372036854775807,"significant_figures":1,"counts":[]}}}`, "configuration"},
		{"index past the end", `{"unit":"us","stages":{"total":{` + cfg + `,"counts":[[21504,1]]}}}`, "index 21504 of 21504"},
		{"negative index", `{"unit":"us","stages":{"total":{` + cfg + `,"counts":[[-1,1]]}}}`, "index -1"},
		{"indexes out of order", `{"unit":"us","stages":{"total":{` + cfg + `,"counts":[[5,1],[3,1]]}}}`, "index 3"},
		{"an index twice", `{"unit":"us","stages":{"total":{` + cfg + `,"counts":[[5,1],[5,1]]}}}`, "index 5"},
		{"zero count", `{"unit":"us","stages":{"total":{` + cfg + `,"counts":[[5,0]]}}}`, "count 0"},
		{"negative count", `{"unit":"us","stages":{"total":{` + cfg + `,"counts":[[5,-2]]}}}`, "count -2"},
		{"too many counts", `{"unit":"us","stages":{"total":{"lowest_trackable_value":1,"highest_trackable_value":9223372036854775807,"significant_figures":5,"counts":[]}}}`, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r StagesReport
			err := json.Unmarshal([]byte(tt.json), &r)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want one with %q", err, tt.err)
			}
		})
	}
}

// FuzzStagesReport feeds arbitrary answers of /v1/stages to the decoder:
// it must not panic, and what it accepts must encode and decode to itself.
func FuzzStagesReport(f *testing.F) {
	good, _ := json.Marshal(StagesReport{NodeID: "n1", Stages: map[string]*hdrhistogram.Snapshot{"total": testSnapshot(3, 40_000)}})
	f.Add(good)
	f.Add([]byte(`{"unit":"us","stages":{"x":{"lowest_trackable_value":1,"highest_trackable_value":2,"significant_figures":1,"counts":[[0,1],[3,2]]}}}`))
	f.Add([]byte(`{"unit":"us","stages":{"x":null}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r StagesReport
		if json.Unmarshal(b, &r) != nil {
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var r2 StagesReport
		if err := json.Unmarshal(again, &r2); err != nil {
			t.Fatalf("re-decode of %s: %v", again, err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip:\n%+v\n%+v", r, r2)
		}
	})
}

// TestStagesAdminAPI reads the stage histograms of a serving node that has
// signed nothing: only with the admin token, every stage there and empty.
func TestStagesAdminAPI(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	n := startNode(t, cfg)
	if code, _ := get(t, "http://"+n.AdminAddr()+PathStages, ""); code != http.StatusUnauthorized {
		t.Fatalf("GET %s without the token: %d", PathStages, code)
	}
	ac, err := NewAdminClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ac.Stages(ctxT(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if r.NodeID != "n1" || len(r.Stages) != 9 {
		t.Fatalf("report of node %q with %d stages, want n1 with 9", r.NodeID, len(r.Stages))
	}
	for name, s := range r.Stages {
		if n := hdrhistogram.Import(s).TotalCount(); n != 0 || s.HighestTrackableValue != int64(10*time.Minute/time.Microsecond) {
			t.Errorf("%s: %d values, up to %d µs", name, n, s.HighestTrackableValue)
		}
	}
}

// checkStages checks that the node's stage histograms hold as many values
// as the coterie_signing_stage_seconds metric, stage by stage, and returns
// their counts.
func checkStages(t *testing.T, n *Node, ac *AdminClient) map[string]int64 {
	t.Helper()
	r, err := ac.Stages(ctxT(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for name, s := range r.Stages {
		got[name] = hdrhistogram.Import(s).TotalCount()
	}
	families, err := n.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "coterie_signing_stage_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			stage := m.GetLabel()[0].GetValue()
			if want := int64(m.GetHistogram().GetSampleCount()); got[stage] != want {
				t.Errorf("stage %s: %d values in its HDR histogram, %d in the metric", stage, got[stage], want)
			}
		}
	}
	return got
}
