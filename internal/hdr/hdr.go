package hdr

import (
	"errors"
	"slices"

	"github.com/HdrHistogram/hdrhistogram-go"
)

var (
	// ErrMismatch is returned by Sub and Merge for histograms that differ
	// in configuration or in the number of counts.
	ErrMismatch = errors.New("hdr: histograms differ in configuration")
	// ErrReset is returned by Sub when a count of the earlier snapshot
	// exceeds the later one's: the histogram was reset in between, as
	// when its node restarted. The later snapshot alone then holds what
	// was recorded since.
	ErrReset = errors.New("hdr: histogram reset between snapshots")
)

// Sub returns what was recorded in a cumulative histogram between the
// snapshots before and after, count by count. A nil before counts as
// empty; after must not be nil. It returns ErrMismatch when the two differ
// in configuration, and ErrReset when a count went down.
func Sub(after, before *hdrhistogram.Snapshot) (*hdrhistogram.Snapshot, error) {
	out := *after
	out.Counts = slices.Clone(after.Counts)
	if before == nil {
		return &out, nil
	}
	if !compatible(after, before) {
		return nil, ErrMismatch
	}
	for i, c := range before.Counts {
		if out.Counts[i] -= c; out.Counts[i] < 0 {
			return nil, ErrReset
		}
	}
	return &out, nil
}

// Merge returns a histogram of every value in snaps, whose configuration
// they must all share (ErrMismatch otherwise). It skips nil snapshots and
// returns nil when none is left.
func Merge(snaps ...*hdrhistogram.Snapshot) (*hdrhistogram.Histogram, error) {
	var sum *hdrhistogram.Snapshot
	for _, s := range snaps {
		switch {
		case s == nil:
		case sum == nil:
			c := *s
			c.Counts = slices.Clone(s.Counts)
			sum = &c
		case !compatible(sum, s):
			return nil, ErrMismatch
		default:
			for i, c := range s.Counts {
				sum.Counts[i] += c
			}
		}
	}
	if sum == nil {
		return nil, nil
	}
	return hdrhistogram.Import(sum), nil
}

// compatible reports whether a and b count the same buckets.
func compatible(a, b *hdrhistogram.Snapshot) bool {
	return a.LowestTrackableValue == b.LowestTrackableValue && a.HighestTrackableValue == b.HighestTrackableValue &&
		a.SignificantFigures == b.SignificantFigures && len(a.Counts) == len(b.Counts)
}
