package callback

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// fixedRand returns frac·(n-1), so a test picks where in the jitter range
// a delay falls: 0 is the low end, 1 the high end.
type fixedRand float64

func (f fixedRand) Int64N(n int64) int64 { return int64(float64(f) * float64(n-1)) }

func TestBackoffNext(t *testing.T) {
	expo := Backoff{MaxAttempts: 7, Initial: time.Second, Max: 10 * time.Second, Multiplier: 2, Jitter: 0.5}
	tests := []struct {
		name string
		b    Backoff
		rnd  fixedRand
		want []time.Duration // for attempts 1, 2, ...; the budget ends after them
	}{
		{
			name: "default is 20 tries 3 minutes apart",
			b:    DefaultBackoff(),
			rnd:  0.5,
			want: repeat(3*time.Minute, 19),
		},
		{
			name: "exponential capped, jitter low end",
			b:    expo,
			rnd:  0,
			want: []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second},
		},
		{
			name: "exponential capped, jitter high end",
			b:    expo,
			rnd:  1,
			want: []time.Duration{1500 * time.Millisecond, 3 * time.Second, 6 * time.Second, 12 * time.Second, 15 * time.Second, 15 * time.Second},
		},
		{
			name: "one attempt has no retry",
			b:    Backoff{MaxAttempts: 1, Initial: time.Second, Max: time.Second, Multiplier: 1},
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			b.Rand = tc.rnd
			if err := b.Validate(); err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.want {
				got, ok := b.Next(i + 1)
				if !ok || got != want {
					t.Fatalf("Next(%d) = %s, %v; want %s, true", i+1, got, ok, want)
				}
			}
			if d, ok := b.Next(len(tc.want) + 1); ok {
				t.Fatalf("Next(%d) = %s, true; want budget exhausted", len(tc.want)+1, d)
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestBackoffJitterRange(t *testing.T) {
	b := DefaultBackoff() // global random source
	lo, hi := 3*time.Minute*9/10, 3*time.Minute*11/10
	for i := 1; i < b.MaxAttempts; i++ {
		if d, ok := b.Next(i); !ok || d < lo || d > hi {
			t.Fatalf("Next(%d) = %s, %v; want within [%s, %s]", i, d, ok, lo, hi)
		}
	}
}

func TestBackoffValidate(t *testing.T) {
	tests := []struct {
		name string
		b    Backoff
		want []string // substrings, one per problem
	}{
		{"default", DefaultBackoff(), nil},
		{"zero", Backoff{}, []string{"max attempts", "initial delay", "multiplier"}},
		{"everything wrong", Backoff{MaxAttempts: -1, Initial: -time.Second, Max: 48 * time.Hour, Multiplier: 0.5, Jitter: 1},
			[]string{"max attempts", "initial delay", "max delay", "multiplier", "jitter"}},
		{"max below initial", Backoff{MaxAttempts: 3, Initial: time.Minute, Max: time.Second, Multiplier: 1}, []string{"max delay"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.b.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
