package hdr_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/coterie-mpc/coterie/internal/hdr"
)

// snap returns a snapshot of the nodes' configuration (microseconds, 1 µs
// to 10 minutes, 3 significant figures) holding values.
func snap(values ...int64) *hdrhistogram.Snapshot {
	return snapOf(hdrhistogram.New(1, 600_000_000, 3), values...)
}

func snapOf(h *hdrhistogram.Histogram, values ...int64) *hdrhistogram.Snapshot {
	for _, v := range values {
		if err := h.RecordValue(v); err != nil {
			panic(err)
		}
	}
	return h.Export()
}

func TestSub(t *testing.T) {
	tests := []struct {
		name          string
		after, before *hdrhistogram.Snapshot
		want          *hdrhistogram.Snapshot
		err           error
	}{
		{name: "the values in between", after: snap(5, 5, 900, 1_500_000, 42), before: snap(5, 42),
			want: snap(5, 900, 1_500_000)},
		{name: "nothing in between", after: snap(7, 8), before: snap(7, 8), want: snap()},
		{name: "both empty", after: snap(), before: snap(), want: snap()},
		{name: "no before", after: snap(3, 4), want: snap(3, 4)},
		{name: "a count went down", after: snap(5, 900), before: snap(5, 5), err: hdr.ErrReset},
		{name: "reset, then fewer values", after: snap(900), before: snap(5, 900, 900), err: hdr.ErrReset},
		{name: "other significant figures", after: snap(5), before: snapOf(hdrhistogram.New(1, 600_000_000, 2)), err: hdr.ErrMismatch},
		{name: "other highest value", after: snap(5), before: snapOf(hdrhistogram.New(1, 60_000_000, 3)), err: hdr.ErrMismatch},
		{name: "other lowest value", after: snap(5), before: snapOf(hdrhistogram.New(1000, 600_000_000, 3)), err: hdr.ErrMismatch},
		{name: "truncated counts", after: snap(5), before: truncated(snap()), err: hdr.ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			after := clone(tt.after)
			before := clone(tt.before)
			got, err := hdr.Sub(tt.after, tt.before)
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %d values, want %d", total(got), total(tt.want))
			}
			if !reflect.DeepEqual(tt.after, after) || !reflect.DeepEqual(tt.before, before) {
				t.Error("Sub modified its arguments")
			}
		})
	}
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name  string
		snaps []*hdrhistogram.Snapshot
		want  *hdrhistogram.Snapshot // nil: no histogram
		err   error
	}{
		{name: "three nodes", snaps: []*hdrhistogram.Snapshot{snap(1, 2, 3), snap(250_000), snap(2, 599_999_999)},
			want: snap(1, 2, 2, 3, 250_000, 599_999_999)},
		{name: "one node", snaps: []*hdrhistogram.Snapshot{snap(17, 17)}, want: snap(17, 17)},
		{name: "nil skipped", snaps: []*hdrhistogram.Snapshot{nil, snap(9), nil, snap(10)}, want: snap(9, 10)},
		{name: "all empty", snaps: []*hdrhistogram.Snapshot{snap(), snap()}, want: snap()},
		{name: "none"},
		{name: "only nil", snaps: []*hdrhistogram.Snapshot{nil}},
		{name: "other significant figures", snaps: []*hdrhistogram.Snapshot{snap(1), snapOf(hdrhistogram.New(1, 600_000_000, 2), 1)},
			err: hdr.ErrMismatch},
		{name: "truncated counts", snaps: []*hdrhistogram.Snapshot{snap(1), truncated(snap())}, err: hdr.ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var kept []*hdrhistogram.Snapshot
			for _, s := range tt.snaps {
				kept = append(kept, clone(s))
			}
			h, err := hdr.Merge(tt.snaps...)
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			switch {
			case err != nil:
			case tt.want == nil && h != nil:
				t.Errorf("a histogram of %d values from no snapshot", h.TotalCount())
			case tt.want != nil && (h == nil || !h.Equals(hdrhistogram.Import(tt.want))):
				t.Errorf("merged %v, want the histogram of all the values (%d)", h, total(tt.want))
			}
			if !reflect.DeepEqual(tt.snaps, kept) {
				t.Error("Merge modified its arguments")
			}
		})
	}
}

// TestSubThenMerge is the bench's use: each node's load is the difference
// of its snapshots, and the cluster's the sum of the differences, whose
// quantiles are those of the values recorded during the load.
func TestSubThenMerge(t *testing.T) {
	n1, _ := hdr.Sub(snap(10, 20, 30_000, 40_000), snap(10, 20))
	n2, _ := hdr.Sub(snap(5, 50_000, 60_000), snap(5))
	h, err := hdr.Merge(n1, n2)
	if err != nil {
		t.Fatal(err)
	}
	if h.TotalCount() != 4 || !h.ValuesAreEquivalent(h.ValueAtQuantile(50), 40_000) ||
		!h.ValuesAreEquivalent(h.Max(), 60_000) || !h.ValuesAreEquivalent(h.Min(), 30_000) {
		t.Fatalf("count %d, p50 %d, min %d, max %d", h.TotalCount(), h.ValueAtQuantile(50), h.Min(), h.Max())
	}
}

func truncated(s *hdrhistogram.Snapshot) *hdrhistogram.Snapshot {
	s.Counts = s.Counts[:len(s.Counts)-1]
	return s
}

func clone(s *hdrhistogram.Snapshot) *hdrhistogram.Snapshot {
	if s == nil {
		return nil
	}
	c := *s
	c.Counts = append([]int64(nil), s.Counts...)
	return &c
}

func total(s *hdrhistogram.Snapshot) int64 {
	var n int64
	for _, c := range s.Counts {
		n += c
	}
	return n
}
