package report

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestWriteTable(t *testing.T) {
	manyViolations := drillRun()
	manyViolations.Check.Violations = nil
	for i := range maxTableViolations + 5 {
		manyViolations.Check.Violations = append(manyViolations.Check.Violations, fmt.Sprintf("I2: req-%d has two owners", i))
	}
	interrupted := findMaxRun()
	interrupted.Interrupted = "signal: interrupt"
	interrupted.Check = Check{}

	for _, tc := range []struct {
		name    string
		run     *Run
		want    []string
		notWant []string
	}{
		{
			name: "drill",
			run:  drillRun(),
			want: []string{
				"drill 2026-03-04 10:30:00 UTC, ran 40.0 s: 3 nodes, 3 cosigners, quorum 2, 8 users, open loop at 20.0/s, for 40.0 s, up to 4 digests, mix 10.0% config changes, 5.0% retry, 2.0% reject, 4 rounds\n",
				"latency", "p99.9",
				"end to end      760    42.3 ms  61.0 ms  240.0 ms  1.80 s   3.20 s\n",
				"  poll          760    40 µs    90 µs    2.00 ms", "  online_round",
				"throughput  19.0/s", "finished    760",
				"signed    740    97.4%", "failed    8      1.1%",
				"callback: REJECT", "presign: timeout",
				"pool min   41", "pool max   50",
				"node-1     12.5 s  32.9%  16.4 ms\n", "all        38.0 s         50.0 ms\n",
				"bare online p50", "6.00 ms", "end-to-end p50 / bare online          7.05×",
				"kill-leader       1       400.0 ms / 400.0 ms / 400.0 ms  1          900.0 ms / 900.0 ms / 900.0 ms",
				"partition-leader", "sigstop",
				"1.05 s        did not recover: " + hostile + "\n",
				"1          900.0 ms\n2      kill-owner",
				"invariant check: FAIL, 2 violations\n  read 760 requests",
				"  I1: presignature p-17 reserved by req-3 and req-9\n",
			},
			notWant: []string{"find max", "ceiling", "INTERRUPTED"},
		},
		{
			name: "find max, interrupted",
			run:  interrupted,
			want: []string{
				"bench 2026-03-04 11:00:00 UTC, ran 2m0s: 3 nodes, 3 cosigners, quorum 2, 4 users, closed loop, 16 in flight, for 2m0s, up to 1 digests\n",
				"INTERRUPTED: signal: interrupt\n",
				"rate    p99       backlog  cpu per signature  bounds",
				"40.0/s  900.0 ms  120      60.0 ms            broken",
				"max 20.0/s, ceiling 50.0/s (40.0% of the ceiling)",
				"invariant check: NOT RUN\n",
			},
			notWant: []string{"fault", "pool", "bare", "process", "mix", "error"},
		},
		{
			name: "cpu without signatures",
			run: func() *Run {
				r := findMaxRun()
				r.CPU = []ProcessCPU{{Name: "node-1", Seconds: 2}}
				return r
			}(),
			want: []string{"node-1   2.00 s  100.0%  -\n", "all      2.00 s          -\n"},
		},
		{
			name: "ok check",
			run:  findMaxRun(),
			want: []string{"invariant check: OK\n  read 10 requests\n"},
		},
		{
			name:    "many violations",
			run:     manyViolations,
			want:    []string{"FAIL, 25 violations", "req-19 has", "  ... and 5 more\n"},
			notWant: []string{"req-20 has"},
		},
		{
			name:    "empty",
			run:     &Run{},
			want:    []string{"run\n\ninvariant check: NOT RUN\n"},
			notWant: []string{"latency", "throughput", "outcome", "cpu", "fault"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := WriteTable(&b, tc.run); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out, w) {
					t.Errorf("has %q, want it left out", w)
				}
			}
			if t.Failed() {
				t.Logf("table:\n%s", out)
			}
		})
	}
}

func TestWriteTableWriterError(t *testing.T) {
	boom := errors.New("boom")
	if err := WriteTable(failWriter{boom}, drillRun()); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the writer's error", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }
