package node

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// dashboard is the Grafana dashboard shipped for these metrics.
const dashboard = "../deploy/grafana/coterie.json"

// checkMetrics holds a node's /metrics to Prometheus's conventions
// (promlint: units in names, _total counters, help text), checks that no
// label carries a request id (label values must stay few), and that every
// coterie metric the shipped Grafana dashboard queries exists.
func checkMetrics(t *testing.T, metrics []byte, requestIDs []string) {
	t.Helper()
	problems, err := promlint.New(bytes.NewReader(metrics)).Lint()
	if err != nil {
		t.Fatalf("lint /metrics: %v", err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	for _, id := range requestIDs {
		if bytes.Contains(metrics, []byte(`"`+id+`"`)) {
			t.Errorf("a metric label holds request id %s", id)
		}
	}

	b, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil || len(d.Panels) == 0 {
		t.Fatalf("dashboard %s: %v, %d panels", dashboard, err, len(d.Panels))
	}
	name := regexp.MustCompile(`coterie_[a-z_]+`)
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			for _, m := range name.FindAllString(q.Expr, -1) {
				if !slices.ContainsFunc([]string{"", "_bucket", "_count", "_sum"}, func(suffix string) bool {
					return strings.HasSuffix(m, suffix) && bytes.Contains(metrics, []byte("\n# TYPE "+strings.TrimSuffix(m, suffix)+" "))
				}) {
					t.Errorf("dashboard panel %q queries %s, which the node does not export", p.Title, m)
				}
			}
		}
	}
}
