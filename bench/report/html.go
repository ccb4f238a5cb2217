package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"

	"gonum.org/v1/plot"
)

//go:embed report.html.tmpl
var pageSource string

// pageTemplate is parsed once; it holds no state.
var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{"align": align}).Parse(pageSource))

// HeadClass is the class of column i's heading: that of the column's
// first cell, so that a heading lines up with its figures.
func (t *table) HeadClass(i int) string {
	if len(t.Rows) == 0 || i >= len(t.Rows[0]) {
		return ""
	}
	return align(t.Rows[0][i])
}

// align is the class of a table cell: "num" for a figure, which lines up
// on the right, and none for a name.
func align(cell string) string {
	n := strings.TrimPrefix(cell, "-")
	if cell == "-" || n != "" && n[0] >= '0' && n[0] <= '9' {
		return "num"
	}
	return ""
}

// page is what the template renders.
type page struct {
	Kind        string
	Setup       string
	Interrupted string
	Verdict     string
	Check       Check
	Panels      []panel
}

// panel is a section of the page: plots with their tables beside them, and
// wide tables under both.
type panel struct {
	Title  string
	Plots  []template.HTML
	Tables []*table
	Wide   []*table
}

// WriteHTML writes r to w as one self-contained HTML page that opens
// offline: it loads no script, style sheet, font or image, and its plots
// are inline SVG. The page shows the invariant check's verdict first, then
// end-to-end latency over time with each drill fault marked, throughput
// over time, the presignature pool over time, CPU per signature by
// process, the drill's failover times by fault kind and the find-max
// search, each beside the tables WriteTable prints. Everything taken from
// r is escaped. Sections the run has nothing for are left out.
func WriteHTML(w io.Writer, r *Run) error {
	f := newFigures(r)
	pg := page{
		Kind:        kind(r),
		Setup:       setupLine(r),
		Interrupted: r.Interrupted,
		Verdict:     verdict(r.Check),
		Check:       r.Check,
	}
	sections := []struct {
		title  string
		draw   bool
		plot   func(*Run) (*plot.Plot, error)
		tables []*table
		wide   []*table
	}{
		// The latency plot is drawn for faults alone, so that every fault shows on it.
		{"End-to-end latency", len(r.Samples) > 0 || len(r.Faults) > 0, latencyPlot, []*table{f.Latency}, nil},
		{"Throughput", len(r.Samples) > 0, throughputPlot, []*table{f.Load, f.Outcomes, f.Errors}, nil},
		{"Presignature pool", len(r.Pool) > 0, poolPlot, []*table{f.Pool}, nil},
		{"CPU", len(r.CPU) > 0, cpuPlot, []*table{f.CPU, f.Bare}, nil},
		{"Drill", len(r.Faults) > 0, failoverPlot, nil, []*table{f.FaultKinds, f.Rounds}},
		{"Find max", r.FindMax != nil, findMaxPlot, []*table{f.FindMax}, nil},
	}
	for _, s := range sections {
		pn := panel{Title: s.title, Tables: present(s.tables), Wide: present(s.wide)}
		if s.draw {
			p, err := s.plot(r)
			if err != nil {
				return err
			}
			svg, err := render(p)
			if err != nil {
				return err
			}
			pn.Plots = append(pn.Plots, svg)
		}
		if len(pn.Plots)+len(pn.Tables)+len(pn.Wide) > 0 {
			pg.Panels = append(pg.Panels, pn)
		}
	}
	if err := pageTemplate.Execute(w, pg); err != nil {
		return fmt.Errorf("report: write html: %w", err)
	}
	return nil
}

// present drops the nil tables.
func present(ts []*table) []*table {
	var out []*table
	for _, t := range ts {
		if t != nil {
			out = append(out, t)
		}
	}
	return out
}
