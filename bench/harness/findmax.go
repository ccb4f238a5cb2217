package harness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/coterie-mpc/coterie/bench/load"
	"github.com/coterie-mpc/coterie/bench/report"
)

// FindMaxConfig is a search for the highest sustainable open-loop rate:
// steps of StepDuration at rates From, From×Factor, ..., until a step
// breaks a bound or Steps ran.
type FindMaxConfig struct {
	From         float64
	Factor       float64
	Steps        int
	StepDuration time.Duration
	// MaxP99 bounds a step's end-to-end p99 of signed requests.
	MaxP99 time.Duration
	// MaxBacklog bounds the requests a step left open MaxP99 after its
	// end, and the submissions it skipped.
	MaxBacklog int
}

// DefaultFindMax starts at 0.1 per second and raises the rate by half at
// each 30-second step, up to 12 steps, within a p99 of 5 s and a backlog
// of 5.
func DefaultFindMax() *FindMaxConfig {
	return &FindMaxConfig{From: 0.1, Factor: 1.5, Steps: 12, StepDuration: 30 * time.Second, MaxP99: 5 * time.Second, MaxBacklog: 5}
}

func (f *FindMaxConfig) validate() error {
	var errs []error
	if f.From <= 0 || f.Factor <= 1 || f.Steps < 1 {
		errs = append(errs, fmt.Errorf("find-max: from %g must be positive, factor %g above 1, steps %d at least 1", f.From, f.Factor, f.Steps))
	}
	if f.StepDuration <= 0 || f.MaxP99 <= 0 || f.MaxBacklog < 0 {
		errs = append(errs, fmt.Errorf("find-max: step %s and p99 bound %s must be positive, backlog bound %d not negative", f.StepDuration, f.MaxP99, f.MaxBacklog))
	}
	return errors.Join(errs...)
}

// findMax runs the steps, recording each in the report, and stops at the
// first that breaks a bound.
func (s *session) findMax(ctx context.Context) error {
	fm := s.cfg.FindMax
	s.rep.FindMax = &report.FindMax{}
	for k := range fm.Steps {
		lc := s.cfg.Load
		lc.Users = s.users
		lc.Rate = fm.From * math.Pow(fm.Factor, float64(k))
		lc.Duration, lc.Drain = fm.StepDuration, fm.MaxP99
		cpuFrom := s.c.CPU()
		s.log.Info("find-max step", "step", k+1, "rate", lc.Rate)
		res, err := load.Run(ctx, s.c.Workspace, lc)
		if res != nil {
			s.loads = append(s.loads, res)
		}
		if err != nil {
			return err
		}
		st := step(lc.Rate, res, fm)
		if sigs := signed(res); sigs > 0 {
			st.CPUPerSignature = cpuSpent(cpuFrom, s.c.CPU()) / float64(sigs)
		}
		s.rep.FindMax.Steps = append(s.rep.FindMax.Steps, st)
		if !st.OK {
			break
		}
		s.rep.FindMax.Max = lc.Rate
	}
	return nil
}

// step judges one step's load against the bounds.
func step(rate float64, res *load.Result, fm *FindMaxConfig) report.Step {
	h := newHistogram()
	st := report.Step{Rate: rate, Backlog: res.Backlog}
	for _, q := range res.Requests {
		switch q.State {
		case "":
			st.Backlog++
		case "signed":
			h.record(q.Latency())
		}
	}
	st.P99 = h.summary().P99
	st.OK = st.P99 <= fm.MaxP99 && st.Backlog <= fm.MaxBacklog && h.h.TotalCount() > 0
	return st
}

// signed counts the signatures of res's signed requests.
func signed(res *load.Result) int {
	n := 0
	for _, q := range res.Requests {
		if q.State == "signed" {
			n += q.Digests
		}
	}
	return n
}

// cpuSpent returns the CPU seconds the processes of to spent since from;
// a process not read at from is left out.
func cpuSpent(from, to map[string]time.Duration) float64 {
	var total float64
	for name, d := range to {
		if f, ok := from[name]; ok && d >= f {
			total += (d - f).Seconds()
		}
	}
	return total
}
