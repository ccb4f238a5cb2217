package main

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/coterie-mpc/coterie/bench/load"
)

// progress shows long work on a terminal with schollz/progressbar: a bar
// when the work has a known length, a spinner when it has not. Off a
// terminal it draws nothing, so that output stays quiet and
// machine-readable.
type progress struct{ bar *progressbar.ProgressBar }

// newProgress starts a bar of max steps on w, or a spinner when max is -1.
func newProgress(w io.Writer, max int64, desc string) *progress {
	on := isTerminal(w)
	bar := progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetVisibility(on),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionThrottle(250*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionClearOnFinish(),
	)
	if on {
		_ = bar.RenderBlank()
	}
	return &progress{bar: bar}
}

// spin shows a spinner on w while work runs, and returns work's error.
func spin(w io.Writer, desc string, work func() error) error {
	p := newProgress(w, -1, desc)
	defer p.done()
	return work()
}

// loadProgress shows a bench's load: elapsed of total, and its counts.
func loadProgress(w io.Writer, total time.Duration) (*progress, func(load.Progress)) {
	p := newProgress(w, total.Milliseconds(), "load")
	return p, func(lp load.Progress) {
		p.bar.Describe(fmt.Sprintf("submitted %d  finished %d  open %d", lp.Submitted, lp.Finished, lp.Open))
		_ = p.bar.Set64(min(lp.Elapsed.Milliseconds(), total.Milliseconds()))
	}
}

// done ends the bar or spinner and clears its line.
func (p *progress) done() { _ = p.bar.Finish() }
