package report

import (
	"fmt"
	"math"
	"time"
)

// dur prints a duration the way a reader compares latencies: microseconds
// below 0.1 ms, milliseconds with two decimals below 10 ms and one below a
// second, seconds with two decimals below ten seconds and one below 100,
// then whole seconds rounded by time.Duration.String (e.g. 2m5s).
func dur(d time.Duration) string {
	if d < 0 {
		return "-" + dur(-d)
	}
	switch {
	case d == 0:
		return "0"
	case d < 100*time.Microsecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", ms(d))
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", ms(d))
	case d < 10*time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d < 100*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	default:
		return d.Round(time.Second).String()
	}
}

// ms is d in (fractional) milliseconds, the unit of every latency axis.
func ms(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// cpuDur prints CPU seconds with dur's units.
func cpuDur(seconds float64) string {
	if !finite(seconds) {
		return "-"
	}
	return dur(time.Duration(seconds * float64(time.Second)))
}

// num prints v with prec decimals, and a non-finite v (a ratio over zero)
// as "-".
func num(v float64, prec int) string {
	if !finite(v) {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// rate prints a per-second rate, or "-" when it is not finite.
func rate(v float64) string {
	if !finite(v) {
		return "-"
	}
	if math.Abs(v) < 1 {
		// A machine that presigns for seconds runs below one per second:
		// two decimals tell its steps apart.
		return num(v, 2) + "/s"
	}
	return num(v, 1) + "/s"
}

// pct prints part of whole as a percentage, or "-" when whole is zero.
func pct(part, whole float64) string {
	if whole == 0 {
		return "-"
	}
	return num(100*part/whole, 1) + "%"
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool {
	return !math.IsNaN(v) && !math.IsInf(v, 0)
}
