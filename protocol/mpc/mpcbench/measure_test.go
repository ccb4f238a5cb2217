package mpcbench_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol/mpc/mpcbench"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*mpcbench.Config)
		// want lists a fragment of every problem the error must name.
		want []string
	}{
		{"default", func(*mpcbench.Config) {}, nil},
		{"three parties", func(c *mpcbench.Config) { c.Parties = 3 }, nil},
		{"most presigns", func(c *mpcbench.Config) { c.Presigns = mpcbench.MaxPresigns }, nil},
		{"one party", func(c *mpcbench.Config) { c.Parties = 1 }, []string{"Parties is 1"}},
		{"four parties", func(c *mpcbench.Config) { c.Parties = 4 }, []string{"Parties is 4"}},
		{"no presigns", func(c *mpcbench.Config) { c.Presigns = 0 }, []string{"Presigns is 0"}},
		{"too many presigns", func(c *mpcbench.Config) { c.Presigns = mpcbench.MaxPresigns + 1 }, []string{"Presigns is 101"}},
		{"no clock", func(c *mpcbench.Config) { c.Clock = nil }, []string{"Clock is nil"}},
		{"everything", func(c *mpcbench.Config) { *c = mpcbench.Config{} }, []string{"Parties is 0", "Presigns is 0", "Clock is nil"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mpcbench.DefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, mpcbench.ErrConfig) {
				t.Fatalf("Validate: %v, want ErrConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v, want it to name %q", err, w)
				}
			}
		})
	}
}

func TestMeasureBadConfig(t *testing.T) {
	_, err := mpcbench.Measure(context.Background(), mpcbench.Config{})
	if !errors.Is(err, mpcbench.ErrConfig) {
		t.Fatalf("Measure: %v, want ErrConfig", err)
	}
}

// countingClock is the real clock, which cancels a context when it is
// read for the n-th time.
type countingClock struct {
	clock.Clock
	n      int
	cancel context.CancelFunc
}

func (c *countingClock) Now() time.Time {
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return c.Clock.Now()
}

// TestMeasureCancelled checks that Measure returns ctx's error, without
// running its sessions, when ctx ends before it starts or as its key
// generation starts (Measure reads the clock then: the first read).
func TestMeasureCancelled(t *testing.T) {
	tests := []struct {
		name string
		// cancelAt is the clock read that cancels ctx, 0 to cancel it
		// before Measure.
		cancelAt int
	}{
		{"before", 0},
		{"as keygen starts", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg := mpcbench.DefaultConfig()
			cfg.Clock = &countingClock{Clock: clock.Real(), n: tt.cancelAt, cancel: cancel}
			if tt.cancelAt == 0 {
				cancel()
			}
			res, err := mpcbench.Measure(ctx, cfg)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Measure: %+v, %v, want context.Canceled", res, err)
			}
		})
	}
}

// TestMeasure runs one small 2-of-2 measurement: a key generation and two
// presignatures, about 10 s on two cores.
func TestMeasure(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a key generation and two presign sessions")
	}
	cfg := mpcbench.DefaultConfig()
	cfg.Presigns = 2
	res, err := mpcbench.Measure(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keygen %s, presign p50 %s (%.2f CPU-s each), online p50 %s",
		res.Keygen, res.PresignP50(), res.PresignCPU, res.OnlineP50())
	if res.Parties != 2 || res.Keygen <= 0 || len(res.Presign) != 2 || len(res.Online) != 2 {
		t.Fatalf("result %+v, want 2 parties, a keygen, 2 presigns and 2 online rounds", res)
	}
	// Presigning is seconds of CPU; an online round is a millisecond or
	// so. Anything else means the figures measure something else.
	if res.PresignCPU < 0.1 || res.PresignP50() < 100*time.Millisecond {
		t.Errorf("presign p50 %s, %.3f CPU-s: too small to be a presign", res.PresignP50(), res.PresignCPU)
	}
	if p := res.OnlineP50(); p <= 0 || p >= res.PresignP50() {
		t.Errorf("online p50 %s, want more than 0 and less than a presign (%s)", p, res.PresignP50())
	}
}

func TestP50(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var ds []time.Duration
		for _, v := range n {
			ds = append(ds, time.Duration(v)*time.Millisecond)
		}
		return ds
	}
	tests := []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{ms(5), 5 * time.Millisecond},
		{ms(9, 1, 5), 5 * time.Millisecond},
		{ms(4, 1, 3, 2), 3 * time.Millisecond},
	}
	for _, tt := range tests {
		in := append([]time.Duration(nil), tt.in...)
		if got := mpcbench.P50(tt.in); got != tt.want {
			t.Errorf("P50(%v) = %s, want %s", tt.in, got, tt.want)
		}
		for i := range in {
			if in[i] != tt.in[i] {
				t.Errorf("P50 reordered its input: %v, was %v", tt.in, in)
				break
			}
		}
	}
}

// TestImports checks the import graph: the runtime package, which the
// shipped binary links, must not bring in the testing package or the
// test-only fixture code (that is mpcbenchtest's).
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, p := range deps {
		if p == "testing" || strings.HasSuffix(p, "/internal/mpctest") || strings.HasSuffix(p, "/mpcbenchtest") {
			t.Errorf("mpcbench imports %s", p)
		}
	}
	// The check can see the library: it is in the graph.
	found := false
	for _, p := range deps {
		found = found || p == "github.com/taurusgroup/multi-party-sig/protocols/cmp"
	}
	if !found {
		t.Error("go list -deps does not list the MPC library: the check is blind")
	}
}

// ExampleMeasure measures the library's bare rounds before a benchmark's
// load, to report the load's figures as ratios to them.
func ExampleMeasure() {
	bare, err := mpcbench.Measure(context.Background(), mpcbench.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("online p50 %s, presign p50 %s (%.1f CPU-s)\n", bare.OnlineP50(), bare.PresignP50(), bare.PresignCPU)
}
