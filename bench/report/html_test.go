package report

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// render writes r as HTML and parses it back.
func renderHTML(t *testing.T, r *Run) (string, *html.Node) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("the page does not parse: %v", err)
	}
	return b.String(), doc
}

// all returns the nodes under n that match.
func all(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if match(d) {
			out = append(out, d)
		}
	}
	return out
}

func element(a atom.Atom) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Type == html.ElementNode && n.DataAtom == a }
}

// svgText matches the text elements of an SVG, which the parser keeps as
// foreign content.
func svgText(n *html.Node) bool {
	return n.Type == html.ElementNode && n.Namespace == "svg" && n.Data == "text"
}

func textOf(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// section returns the page's section whose heading starts with title.
func section(t *testing.T, doc *html.Node, title string) *html.Node {
	t.Helper()
	for _, s := range all(doc, element(atom.Section)) {
		if hs := all(s, element(atom.H2)); len(hs) > 0 && strings.HasPrefix(textOf(hs[0]), title) {
			return s
		}
	}
	t.Fatalf("no section %q", title)
	return nil
}

// checkOffline fails if the page could fetch anything: every URL in it is
// one of the SVG namespace names (which are never fetched), and it has no
// element or attribute that loads a resource.
func checkOffline(t *testing.T, page string, doc *html.Node) {
	t.Helper()
	allowed := []string{"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
	for _, u := range regexp.MustCompile(`(?i)https?://[^\s"'<>)]*`).FindAllString(page, -1) {
		if !slices.Contains(allowed, u) {
			t.Errorf("the page refers to %q", u)
		}
	}
	for _, bad := range []string{"url(", "@import", "//cdn", "@font-face"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page has %q", bad)
		}
	}
	for d := range doc.Descendants() {
		if d.Type != html.ElementNode {
			continue
		}
		switch d.DataAtom {
		case atom.Script, atom.Link, atom.Img, atom.Iframe, atom.Object, atom.Embed:
			t.Errorf("the page has a <%s> element", d.Data)
		}
		for _, a := range d.Attr {
			switch strings.ToLower(a.Key) {
			case "src", "href", "srcset", "xlink:href":
				t.Errorf("<%s> has %s=%q", d.Data, a.Key, a.Val)
			}
			if strings.HasPrefix(strings.ToLower(a.Key), "on") {
				t.Errorf("<%s> has an event handler %s", d.Data, a.Key)
			}
		}
	}
}

func TestWriteHTMLDrill(t *testing.T) {
	r := drillRun()
	page, doc := renderHTML(t, r)
	checkOffline(t, page, doc)

	if n := len(all(doc, element(atom.Svg))); n != 5 {
		t.Errorf("%d plots, want 5 (latency, throughput, pool, cpu, failover)", n)
	}
	if strings.Contains(page, hostile) {
		t.Errorf("the page holds %q unescaped", hostile)
	}
	var items []string
	for _, li := range all(section(t, doc, "Invariant check"), element(atom.Li)) {
		items = append(items, textOf(li))
	}
	if !slices.Equal(items, r.Check.Violations) {
		t.Errorf("violations shown as %q, want %q", items, r.Check.Violations)
	}
	check := section(t, doc, "Invariant check")
	if got := attr(check, "class"); got != "check fail" {
		t.Errorf("check section class %q, want \"check fail\"", got)
	}
	if got := textOf(all(check, element(atom.Span))[0]); got != "FAIL" {
		t.Errorf("verdict %q, want FAIL", got)
	}

	// Each fault is marked, with its kind, on the latency plot.
	var labels []string
	for _, n := range all(section(t, doc, "End-to-end latency"), svgText) {
		labels = append(labels, textOf(n))
	}
	for _, f := range r.Faults {
		if want := fmt.Sprintf("%d %s", f.Round, f.Kind); !slices.Contains(labels, want) {
			t.Errorf("latency plot has no mark %q; its texts: %q", want, labels)
		}
	}
	// The tables show the terminal's figures.
	drill := textOf(section(t, doc, "Drill"))
	for _, want := range []string{"partition-leader", "900.0 ms / 1.05 s / 1.05 s", "did not recover: " + hostile} {
		if !strings.Contains(drill, want) {
			t.Errorf("drill section lacks %q", want)
		}
	}
	if lat := textOf(section(t, doc, "End-to-end latency")); !strings.Contains(lat, "240.0 ms") || !strings.Contains(lat, "online_round") {
		t.Errorf("latency section lacks the latency table")
	}
	for _, h := range all(doc, element(atom.H2)) {
		if textOf(h) == "Find max" {
			t.Errorf("a drill without --find-max has a find-max section")
		}
	}
}

func TestWriteHTMLHostileNames(t *testing.T) {
	r := drillRun()
	r.Faults[0].Kind = hostile
	r.Faults[1].Target = hostile
	r.FaultKinds[0].Kind = hostile
	r.CPU[0].Name = hostile
	r.Samples[0].Outcome = hostile
	r.Stages[0].Name = hostile
	r.Outcomes[hostile] = 1
	r.Errors[hostile] = 1
	r.Interrupted = hostile
	r.Check.Summary = hostile
	page, doc := renderHTML(t, r)
	if strings.Contains(page, hostile) {
		t.Errorf("the page holds %q unescaped", hostile)
	}
	checkOffline(t, page, doc)
	var found bool
	for _, n := range all(section(t, doc, "End-to-end latency"), svgText) {
		found = found || textOf(n) == "1 "+hostile
	}
	if !found {
		t.Errorf("the hostile fault kind is not shown as text on the latency plot")
	}
}

func TestWriteHTMLFindMax(t *testing.T) {
	page, doc := renderHTML(t, findMaxRun())
	checkOffline(t, page, doc)
	fm := section(t, doc, "Find max")
	if n := len(all(fm, element(atom.Svg))); n != 1 {
		t.Errorf("%d find-max plots, want 1", n)
	}
	text := textOf(fm)
	for _, want := range []string{"max 20.0/s", "ceiling 50.0/s", "broken"} {
		if !strings.Contains(text, want) {
			t.Errorf("find-max section lacks %q", want)
		}
	}
	check := section(t, doc, "Invariant check")
	if got := attr(check, "class"); got != "check ok" {
		t.Errorf("check section class %q, want \"check ok\"", got)
	}
	for _, absent := range []string{"Drill", "Presignature pool", "CPU"} {
		for _, h := range all(doc, element(atom.H2)) {
			if textOf(h) == absent {
				t.Errorf("section %q shown for a run without it", absent)
			}
		}
	}
}

func TestWriteHTMLEmpty(t *testing.T) {
	page, doc := renderHTML(t, &Run{})
	checkOffline(t, page, doc)
	if n := len(all(doc, element(atom.Svg))); n != 0 {
		t.Errorf("%d plots for an empty run", n)
	}
	if got := attr(section(t, doc, "Invariant check"), "class"); got != "check none" {
		t.Errorf("check section class %q, want \"check none\"", got)
	}
	if n := len(all(doc, element(atom.Section))); n != 1 {
		t.Errorf("%d sections, want only the check", n)
	}
}

// A faulted run with no finished request still draws the latency plot, so
// that its faults show.
func TestWriteHTMLFaultsWithoutSamples(t *testing.T) {
	r := drillRun()
	r.Samples, r.Pool, r.CPU = nil, nil, nil
	page, doc := renderHTML(t, r)
	checkOffline(t, page, doc)
	if n := len(all(section(t, doc, "End-to-end latency"), element(atom.Svg))); n != 1 {
		t.Fatalf("%d latency plots, want 1", n)
	}
	if !strings.Contains(page, ">3 sigstop</text>") {
		t.Errorf("the latency plot lacks the sigstop mark")
	}
}

// A run of 100k samples makes a page of a few hundred kilobytes: the
// latency plot draws a few thousand of them.
func TestWriteHTMLLarge(t *testing.T) {
	r := largeRun(100_000)
	page, doc := renderHTML(t, r)
	checkOffline(t, page, doc)
	if len(page) > 1<<20 {
		t.Errorf("the page is %d bytes, want at most 1 MiB", len(page))
	}
	var title string
	for _, n := range all(section(t, doc, "End-to-end latency"), svgText) {
		if s := textOf(n); strings.HasPrefix(s, "End-to-end latency") {
			title = s
		}
	}
	if !strings.Contains(title, "100000 requests") || !strings.Contains(title, "drawn") {
		t.Errorf("latency plot title %q does not say how many were drawn", title)
	}
}

// Odd but possible runs render, as a table and as a page, without error.
func TestWriteDegenerate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(r *Run)
	}{
		{"one sample", func(r *Run) { r.Samples = r.Samples[:1]; r.Elapsed = 0 }},
		{"zero latencies", func(r *Run) {
			for i := range r.Samples {
				r.Samples[i].Latency = 0
			}
		}},
		{"samples after elapsed", func(r *Run) { r.Elapsed = time.Second }},
		{"rounds that all failed", func(r *Run) {
			for i := range r.Faults {
				r.Faults[i].Failover, r.Faults[i].Signing, r.Faults[i].Healed = nil, 0, 0
				r.Faults[i].Err = "target not found"
			}
			r.FaultKinds = nil
		}},
		{"idle processes", func(r *Run) {
			for i := range r.CPU {
				r.CPU[i].Seconds = 0
			}
			r.CPUPerSignature = 0
		}},
		{"non-finite figures", func(r *Run) {
			r.Throughput, r.CPUPerSignature = math.NaN(), math.Inf(1)
			r.CPU[0].Seconds = math.NaN()
			r.Bare.OnlineRatio, r.Bare.PresignRatio = math.Inf(1), math.NaN()
			r.FindMax = &FindMax{Steps: []Step{{Rate: math.NaN(), CPUPerSignature: math.Inf(1)}}, Max: math.NaN(), Ceiling: math.Inf(1)}
		}},
		{"unreadable process cpu", func(r *Run) { r.CPU[1].Seconds = math.NaN() }},
		{"find max without steps", func(r *Run) { r.FindMax = &FindMax{} }},
		{"one pool sample", func(r *Run) { r.Pool = r.Pool[:1] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := drillRun()
			tc.edit(r)
			var tb strings.Builder
			if err := WriteTable(&tb, r); err != nil {
				t.Fatalf("WriteTable: %v", err)
			}
			if strings.Contains(tb.String(), "NaN") || strings.Contains(tb.String(), "Inf") {
				t.Errorf("the table shows a non-finite figure:\n%s", tb.String())
			}
			page, doc := renderHTML(t, r)
			checkOffline(t, page, doc)
			if strings.Contains(page, "NaN") || strings.Contains(page, "Inf") {
				t.Errorf("the page shows a non-finite figure")
			}
		})
	}
}
