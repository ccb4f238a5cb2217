package report

// maxPoints is about how many points one plot draws. A run may hold 100k
// samples; each drawn point is an SVG element of a hundred bytes or so, so
// drawing them all would make a report of megabytes that a browser renders
// slowly, and show no more than a few thousand points do.
const maxPoints = 3000

// thin picks about limit of n points (in order) to draw, and all of them
// when n <= limit. Half the budget goes to every k-th point, which keeps
// the density; the other half to the lowest and the highest point of each
// of limit/4 runs of consecutive points, which keeps the spikes a stride
// would skip. y gives point i's value. The indices returned ascend.
func thin(n, limit int, y func(i int) float64) []int {
	if n <= limit || limit < 4 {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	keep := make([]bool, n)
	stride := ceilDiv(n, limit/2)
	for i := 0; i < n; i += stride {
		keep[i] = true
	}
	run := ceilDiv(n, limit/4)
	for start := 0; start < n; start += run {
		lo, hi := start, start
		for i := start + 1; i < min(start+run, n); i++ {
			if y(i) < y(lo) {
				lo = i
			}
			if y(i) > y(hi) {
				hi = i
			}
		}
		keep[lo], keep[hi] = true, true
	}
	var idx []int
	for i, k := range keep {
		if k {
			idx = append(idx, i)
		}
	}
	return idx
}

func ceilDiv(a, b int) int {
	return (a + b - 1) / b
}
