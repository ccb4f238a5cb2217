package report

import (
	"slices"
	"testing"
)

func TestThin(t *testing.T) {
	spike := func(n, at int) []float64 {
		ys := make([]float64, n)
		for i := range ys {
			ys[i] = float64(i % 7)
		}
		ys[at] = 1000
		ys[n-at-1] = -1000
		return ys
	}
	for _, tc := range []struct {
		name  string
		ys    []float64
		limit int
	}{
		{"none", nil, 100},
		{"under the limit", spike(50, 3), 100},
		{"at the limit", spike(100, 3), 100},
		{"over the limit", spike(101, 3), 100},
		{"large", spike(100_000, 12_345), maxPoints},
		{"spike between strides", spike(100_000, 12_346), maxPoints},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idx := thin(len(tc.ys), tc.limit, func(i int) float64 { return tc.ys[i] })
			if len(tc.ys) <= tc.limit {
				if len(idx) != len(tc.ys) {
					t.Fatalf("kept %d of %d, want all", len(idx), len(tc.ys))
				}
				return
			}
			if len(idx) > tc.limit+4 {
				t.Errorf("kept %d, want about %d", len(idx), tc.limit)
			}
			if !slices.IsSorted(idx) || len(slices.Compact(slices.Clone(idx))) != len(idx) {
				t.Errorf("indices not strictly ascending")
			}
			lo, hi := slices.Index(tc.ys, slices.Min(tc.ys)), slices.Index(tc.ys, slices.Max(tc.ys))
			if !slices.Contains(idx, lo) || !slices.Contains(idx, hi) {
				t.Errorf("dropped the spike: min at %d kept %v, max at %d kept %v", lo, slices.Contains(idx, lo), hi, slices.Contains(idx, hi))
			}
			if idx[0] != 0 {
				t.Errorf("first point dropped")
			}
		})
	}
}
