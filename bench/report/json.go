package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// ErrMalformed is returned by ReadJSON when its input is not one JSON
// object holding a Run: a syntax error, a field of the wrong type, null,
// or more data after the object.
var ErrMalformed = errors.New("report: malformed run JSON")

// WriteJSON writes r to w as indented JSON, the form ReadJSON reads back.
// JSON has no NaN or infinity, so a non-finite figure (a ratio over a zero
// measurement) is written as 0, which the other writers show as not
// measured; r itself is not changed.
func WriteJSON(w io.Writer, r *Run) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(finiteCopy(r)); err != nil {
		return fmt.Errorf("report: write json: %w", err)
	}
	return nil
}

// ReadJSON reads a Run that WriteJSON wrote, so that a saved run can be
// rendered again. Fields it does not know are ignored, so a newer run
// still reads. Malformed input returns an error wrapping ErrMalformed;
// a failing reader returns its own error.
func ReadJSON(rd io.Reader) (*Run, error) {
	dec := json.NewDecoder(rd)
	var r *Run
	if err := dec.Decode(&r); err != nil {
		return nil, readErr(err)
	}
	if r == nil {
		return nil, fmt.Errorf("%w: null", ErrMalformed)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, readErr(err)
		}
		return nil, fmt.Errorf("%w: data after the run", ErrMalformed)
	}
	return r, nil
}

// readErr tells a malformed document from a reader that failed.
func readErr(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syntax) || errors.As(err, &typ) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return fmt.Errorf("report: read json: %w", err)
}

// finiteCopy is r with every non-finite float replaced by 0. It copies
// only what it changes, and shares the rest with r.
func finiteCopy(r *Run) *Run {
	c := *r
	zeroNonFinite(&c.Throughput, &c.CPUPerSignature,
		&c.Setup.Rate, &c.Setup.ConfigChanges, &c.Setup.Retry, &c.Setup.Reject,
		&c.Bare.PresignCPU, &c.Bare.OnlineRatio, &c.Bare.PresignRatio)
	c.CPU = slices.Clone(r.CPU)
	for i := range c.CPU {
		zeroNonFinite(&c.CPU[i].Seconds)
	}
	if r.FindMax != nil {
		fm := *r.FindMax
		fm.Steps = slices.Clone(fm.Steps)
		zeroNonFinite(&fm.Max, &fm.Ceiling)
		for i := range fm.Steps {
			zeroNonFinite(&fm.Steps[i].Rate, &fm.Steps[i].CPUPerSignature)
		}
		c.FindMax = &fm
	}
	return &c
}

func zeroNonFinite(vs ...*float64) {
	for _, v := range vs {
		if !finite(*v) {
			*v = 0
		}
	}
}
