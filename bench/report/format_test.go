package report

import (
	"math"
	"testing"
	"time"
)

func TestDur(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0"},
		{3 * time.Microsecond, "3 µs"},
		{99 * time.Microsecond, "99 µs"},
		{100 * time.Microsecond, "0.10 ms"},
		{4567 * time.Microsecond, "4.57 ms"},
		{42345 * time.Microsecond, "42.3 ms"},
		{999 * time.Millisecond, "999.0 ms"},
		{1234 * time.Millisecond, "1.23 s"},
		{45678 * time.Millisecond, "45.7 s"},
		{125400 * time.Millisecond, "2m5s"},
		{-2 * time.Millisecond, "-2.00 ms"},
	} {
		if got := dur(tc.in); got != tc.want {
			t.Errorf("dur(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNumbers(t *testing.T) {
	for _, tc := range []struct {
		name, got, want string
	}{
		{"rate", rate(19.04), "19.0/s"},
		{"rate below one", rate(0.5488), "0.55/s"},
		{"rate NaN", rate(math.NaN()), "-"},
		{"pct", pct(1, 3), "33.3%"},
		{"pct of zero", pct(1, 0), "-"},
		{"num Inf", num(math.Inf(1), 2), "-"},
		{"cpu", cpuDur(0.0425), "42.5 ms"},
		{"cpu NaN", cpuDur(math.NaN()), "-"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}
