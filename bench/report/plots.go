package report

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"image/color"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Plot sizes, in points; the page scales them to its width.
const (
	plotWidth  = 7.5 * vg.Inch
	plotHeight = 3.2 * vg.Inch
)

// sansFont is Liberation Sans, which plot carries in its binary, so text
// is measured without any font file. The SVG names the family without
// embedding it (that would add half a megabyte per plot); the page's
// style falls back to Arial and Helvetica, which have the same metrics,
// and then to any sans-serif font, so nothing is ever downloaded.
func sansFont(size vg.Length) font.Font {
	return font.From(font.Font{Typeface: "Liberation", Variant: "Sans"}, size)
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	for _, f := range []*font.Font{
		&p.Title.TextStyle.Font, &p.X.Label.TextStyle.Font, &p.Y.Label.TextStyle.Font,
		&p.X.Tick.Label.Font, &p.Y.Tick.Label.Font, &p.Legend.TextStyle.Font,
	} {
		*f = sansFont(f.Size)
	}
	p.Legend.Top = true
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	p.Add(grid)
	return p
}

// render draws p as SVG markup to be placed inline in the page. The markup
// is trusted: vgsvg escapes every text it draws (labels hold names from
// the run) with html.EscapeString.
func render(p *plot.Plot) (template.HTML, error) {
	c := vgsvg.New(plotWidth, plotHeight)
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return "", fmt.Errorf("report: render plot %q: %w", p.Title.Text, err)
	}
	// Drop the XML declaration and comment before <svg: HTML has no use for them.
	s := b.String()
	s = s[strings.Index(s, "<svg"):]
	s = strings.Replace(s, "<svg ", `<svg class="plot" role="img" `, 1)
	return template.HTML(s), nil
}

// secs is d in seconds, the unit of every time axis.
func secs(d time.Duration) float64 { return d.Seconds() }

// faultMarks are the drill's faults as marks on a time axis, each labelled
// with its round and kind, shaded until it was healed.
func faultMarks(faults []Fault) *marks {
	list := make([]mark, 0, len(faults))
	for _, f := range faults {
		list = append(list, mark{At: secs(f.At), Until: secs(f.Healed), Label: fmt.Sprintf("%d %s", f.Round, f.Kind)})
	}
	return newMarks(list, markColor, markShade)
}

// timePlot is a plot over the run's time, with the faults marked, whose X
// axis spans the whole run so that the time plots line up.
type timePlot struct {
	*plot.Plot
	marks *marks
}

func newTimePlot(r *Run, title, y string) timePlot {
	p := newPlot(title, "time since start (s)", y)
	m := faultMarks(r.Faults)
	p.Add(m.Under())
	return timePlot{Plot: p, marks: m}
}

// finish draws the labels over the data and fixes the axes.
func (t timePlot) finish(r *Run) *plot.Plot {
	t.Add(t.marks.Over())
	t.X.Min, t.X.Max = 0, max(secs(span(r)), 1e-3)
	t.Y.Min = min(t.Y.Min, 0)
	if t.Y.Max <= t.Y.Min {
		t.Y.Max = t.Y.Min + 1
	}
	return t.Plot
}

// latencyPlot is every finished request's end-to-end latency by when it
// finished, one colour per outcome, thinned to maxPoints, with each fault
// marked. A long tail (a failover) switches the Y axis to a log scale so
// that the body stays readable.
func latencyPlot(r *Run) (*plot.Plot, error) {
	s := r.Samples
	idx := thin(len(s), maxPoints, func(i int) float64 { return ms(s[i].Latency) })
	title := fmt.Sprintf("End-to-end latency of %d requests", len(s))
	if len(idx) < len(s) {
		title += fmt.Sprintf(" (%d drawn: every k-th, and each run's min and max)", len(idx))
	}
	byOutcome := map[string]plotter.XYs{}
	var ys []float64
	for _, i := range idx {
		y := max(ms(s[i].Latency), 0.001)
		byOutcome[s[i].Outcome] = append(byOutcome[s[i].Outcome], plotter.XY{X: secs(s[i].At), Y: y})
		ys = append(ys, y)
	}
	logY := false
	if len(ys) > 0 {
		sorted := slices.Sorted(slices.Values(ys))
		logY = sorted[len(sorted)-1] > 20*sorted[len(sorted)/2]
	}
	yLabel := "latency (ms)"
	if logY {
		yLabel = "latency (ms, log scale)"
	}
	t := newTimePlot(r, title, yLabel)
	outcomes := slices.SortedFunc(maps.Keys(byOutcome), func(a, b string) int {
		return cmp.Or(cmp.Compare(len(byOutcome[b]), len(byOutcome[a])), cmp.Compare(a, b))
	})
	for i, o := range outcomes {
		sc, err := plotter.NewScatter(byOutcome[o])
		if err != nil {
			return nil, fmt.Errorf("report: latency plot: %w", err)
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: outcomeColor(o, i), Radius: vg.Points(1.2), Shape: draw.CircleGlyph{}}
		t.Add(sc)
		t.Legend.Add(o, sc)
	}
	p := t.finish(r)
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Min = slices.Min(ys)
	}
	return p, nil
}

// outcomeColors are the colours of the usual outcomes, so that a failure is
// red in every report.
var outcomeColors = map[string]color.Color{
	"signed":     color.RGBA{R: 0x1f, G: 0x60, B: 0xc0, A: 0xff},
	"approved":   color.RGBA{R: 0x20, G: 0x90, B: 0xa0, A: 0xff},
	"rejected":   color.RGBA{R: 0xe0, G: 0x80, B: 0x10, A: 0xff},
	"failed":     color.RGBA{R: 0xd0, G: 0x10, B: 0x10, A: 0xff},
	"expired":    color.RGBA{R: 0x80, G: 0x30, B: 0xa0, A: 0xff},
	"unfinished": color.Gray{Y: 0x80},
}

// outcomeColor is the colour of an outcome, the i-th drawn.
func outcomeColor(outcome string, i int) color.Color {
	if c, ok := outcomeColors[outcome]; ok {
		return c
	}
	return plotutil.Color(i)
}

// maxBins is the most bins the throughput plot uses.
const maxBins = 600

// throughputPlot is finished requests per second over the run, in bins of
// about a second (wider for a run longer than maxBins seconds), all of
// the same width so that no partial bin shows a false dip or spike.
func throughputPlot(r *Run) (*plot.Plot, error) {
	total := secs(span(r))
	n := min(max(int(math.Round(total)), 1), maxBins)
	width := total / float64(n)
	counts := make([]int, n)
	for _, s := range r.Samples {
		b := min(max(int(secs(s.At)/width), 0), n-1)
		counts[b]++
	}
	xys := make(plotter.XYs, 0, n+1)
	for i, c := range counts {
		xys = append(xys, plotter.XY{X: float64(i) * width, Y: float64(c) / width})
	}
	xys = append(xys, plotter.XY{X: total, Y: xys[n-1].Y})
	t := newTimePlot(r, fmt.Sprintf("Throughput: finished requests per second, %.2f s bins", width), "requests/s")
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, fmt.Errorf("report: throughput plot: %w", err)
	}
	l.StepStyle = plotter.PostStep
	l.Color = plotutil.Color(0)
	t.Add(l)
	p := t.finish(r)
	p.Y.Max *= 1.15 // room for the fault labels above a steady rate
	return p, nil
}

// poolPlot is the cluster's available presignatures over the run, thinned
// like the latency plot.
func poolPlot(r *Run) (*plot.Plot, error) {
	pool := r.Pool
	idx := thin(len(pool), maxPoints, func(i int) float64 { return float64(pool[i].Depth) })
	xys := make(plotter.XYs, 0, len(idx))
	for _, i := range idx {
		xys = append(xys, plotter.XY{X: secs(pool[i].At), Y: float64(pool[i].Depth)})
	}
	t := newTimePlot(r, "Presignature pool: available across the cluster", "presignatures")
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, fmt.Errorf("report: pool plot: %w", err)
	}
	l.StepStyle = plotter.PostStep
	l.Color = plotutil.Color(2)
	t.Add(l)
	return t.finish(r), nil
}

// cpuPlot is a bar per process: its share of the CPU per signature, or its
// CPU seconds when the run made no signature.
func cpuPlot(r *Run) (*plot.Plot, error) {
	vals := make(plotter.Values, len(r.CPU))
	names := make([]string, len(r.CPU))
	per := perSignature(r)
	title, unit := "CPU per signature by process", "ms of CPU per signature"
	if per == nil {
		title, unit = "CPU by process", "CPU seconds"
	}
	for i, c := range r.CPU {
		names[i] = c.Name
		switch {
		case per != nil:
			vals[i] = per[i] * 1000
		case finite(c.Seconds):
			vals[i] = c.Seconds
		}
	}
	p := newPlot(title, unit, "")
	bars, err := plotter.NewBarChart(vals, vg.Points(12))
	if err != nil {
		return nil, fmt.Errorf("report: cpu plot: %w", err)
	}
	bars.Horizontal = true
	bars.Color = plotutil.Color(1)
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.NominalY(names...)
	p.X.Min = 0
	return p, nil
}

// failoverPlot is, for each fault kind, a box of its failover times with
// every time drawn beside it, and each round's signing time: how long the
// cluster took to claim the faulted node's requests, and to sign again.
func failoverPlot(r *Run) (*plot.Plot, error) {
	var kinds []string
	failover := map[string]plotter.Values{}
	signing := map[string][]float64{}
	for _, f := range r.Faults {
		if !slices.Contains(kinds, f.Kind) {
			kinds = append(kinds, f.Kind)
		}
		for _, d := range f.Failover {
			failover[f.Kind] = append(failover[f.Kind], ms(d))
		}
		if f.Signing > 0 {
			signing[f.Kind] = append(signing[f.Kind], ms(f.Signing))
		}
	}
	p := newPlot("Failover and signing after each fault, by kind", "", "ms after the fault")
	var fo, sg plotter.XYs
	for i, k := range kinds {
		x := float64(i)
		if vs := failover[k]; len(vs) > 0 {
			box, err := plotter.NewBoxPlot(vg.Points(24), x-0.15, vs)
			if err != nil {
				return nil, fmt.Errorf("report: failover plot: %w", err)
			}
			box.FillColor = color.RGBA{R: 0xdd, G: 0xe6, B: 0xf4, A: 0xff}
			p.Add(box)
			for j, v := range vs {
				fo = append(fo, plotter.XY{X: x - 0.15 + spread(j, len(vs)), Y: v})
			}
		}
		for j, v := range signing[k] {
			sg = append(sg, plotter.XY{X: x + 0.2 + spread(j, len(signing[k])), Y: v})
		}
	}
	for _, s := range []struct {
		name  string
		xys   plotter.XYs
		clr   color.Color
		shape draw.GlyphDrawer
	}{
		{"failover", fo, outcomeColors["signed"], draw.CircleGlyph{}},
		{"signing", sg, markColor, draw.TriangleGlyph{}},
	} {
		if len(s.xys) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(s.xys)
		if err != nil {
			return nil, fmt.Errorf("report: failover plot: %w", err)
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: s.clr, Radius: vg.Points(2), Shape: s.shape}
		p.Add(sc)
		p.Legend.Add(s.name, sc)
	}
	p.NominalX(kinds...)
	p.X.Min, p.X.Max = -0.6, float64(len(kinds))-0.4
	p.Y.Min = 0
	p.Y.Max = max(p.Y.Max*1.2, 1) // room for the legend
	return p, nil
}

// spread places the j-th of n points of one category side by side over a
// small width, so that equal values stay visible.
func spread(j, n int) float64 {
	if n < 2 {
		return 0
	}
	return 0.1 * (float64(j)/float64(n-1) - 0.5)
}

// findMaxPlot is the CPU per signature at each rate the search tried,
// with the steps that broke the bounds apart, and the maximum and the
// bare ceiling marked.
func findMaxPlot(r *Run) (*plot.Plot, error) {
	fm := r.FindMax
	p := newPlot("Find max: CPU per signature by rate", "rate (requests/s)", "ms of CPU per signature")
	var m []mark
	for _, x := range []struct {
		v     float64
		label string
	}{{fm.Max, "max"}, {fm.Ceiling, "ceiling"}} {
		if x.v > 0 && finite(x.v) {
			m = append(m, mark{At: x.v, Label: fmt.Sprintf("%s %s", x.label, rate(x.v))})
		}
	}
	mk := newMarks(m, otherColor, nil)
	p.Add(mk.Under())
	var held, broken, all plotter.XYs
	for _, s := range fm.Steps {
		if !finite(s.Rate) || !finite(s.CPUPerSignature) {
			continue
		}
		xy := plotter.XY{X: s.Rate, Y: s.CPUPerSignature * 1000}
		all = append(all, xy)
		if s.OK {
			held = append(held, xy)
		} else {
			broken = append(broken, xy)
		}
	}
	if len(all) > 0 {
		l, err := plotter.NewLine(all)
		if err != nil {
			return nil, fmt.Errorf("report: find-max plot: %w", err)
		}
		l.Color = color.Gray{Y: 0xa0}
		p.Add(l)
	}
	for _, s := range []struct {
		name string
		xys  plotter.XYs
		clr  color.Color
	}{{"bounds held", held, plotutil.Color(2)}, {"bounds broken", broken, markColor}} {
		if len(s.xys) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(s.xys)
		if err != nil {
			return nil, fmt.Errorf("report: find-max plot: %w", err)
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: s.clr, Radius: vg.Points(3), Shape: draw.CircleGlyph{}}
		p.Add(sc)
		p.Legend.Add(s.name, sc)
	}
	p.Add(mk.Over())
	p.X.Min, p.Y.Min = 0, 0
	for _, x := range m {
		p.X.Max = max(p.X.Max, x.At*1.05)
	}
	if p.X.Max <= p.X.Min {
		p.X.Max = 1
	}
	p.Y.Max = max(p.Y.Max*1.25, 1) // room for the legend and the labels
	p.Legend.Left = true
	return p, nil
}
