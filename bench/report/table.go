package report

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// maxTableViolations is how many violations the terminal lists; the HTML
// report and the JSON hold them all.
const maxTableViolations = 20

// WriteTable writes r to w as a compact table for the terminal: the setup
// line, then latency (end to end and per stage), load, outcomes, errors,
// the presignature pool, CPU, the library alone, the drill's faults, the
// find-max steps and the invariant check's verdict. Sections the run has
// nothing for are left out.
func WriteTable(w io.Writer, r *Run) error {
	ew := &errWriter{w: w}
	fmt.Fprintln(ew, setupLine(r))
	if r.Interrupted != "" {
		fmt.Fprintf(ew, "INTERRUPTED: %s\n", r.Interrupted)
	}
	for _, t := range newFigures(r).terminal() {
		if t == nil {
			continue
		}
		fmt.Fprintln(ew)
		writeTable(ew, t)
	}
	fmt.Fprintln(ew)
	writeCheck(ew, r.Check)
	if ew.err != nil {
		return fmt.Errorf("report: write table: %w", ew.err)
	}
	return nil
}

func writeTable(w io.Writer, t *table) {
	indent := ""
	if t.Head == nil {
		fmt.Fprintf(w, "%s:\n", strings.ToLower(t.Title))
		indent = "  "
	}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	if t.Head != nil {
		fmt.Fprintln(tw, strings.Join(t.Head, "\t"))
	}
	for _, row := range t.Rows {
		fmt.Fprintln(tw, indent+strings.Join(row, "\t"))
	}
	tw.Flush()
	// An empty last cell (a round without an error) leaves the padding of
	// the cell before it at the end of the line.
	for line := range strings.Lines(b.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
	for _, n := range t.Notes {
		fmt.Fprintln(w, n)
	}
}

func writeCheck(w io.Writer, c Check) {
	v := verdict(c)
	if n := len(c.Violations); n > 0 {
		v = fmt.Sprintf("%s, %d violations", v, n)
	}
	fmt.Fprintf(w, "invariant check: %s\n", v)
	if c.Summary != "" {
		fmt.Fprintf(w, "  %s\n", c.Summary)
	}
	for i, v := range c.Violations {
		if i == maxTableViolations {
			fmt.Fprintf(w, "  ... and %d more\n", len(c.Violations)-i)
			break
		}
		fmt.Fprintf(w, "  %s\n", v)
	}
}

// errWriter keeps the first write error so that the writers need not
// check each line.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
