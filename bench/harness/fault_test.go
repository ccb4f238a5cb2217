package harness

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseSchedule(t *testing.T) {
	for _, tc := range []struct {
		name  string
		text  string
		nodes int
		want  []Fault
		err   string
	}{
		{"list", "kill-leader\nkill-owner\n", 3, []Fault{KillLeader, KillOwner}, ""},
		{"comments and blanks", "# a drill\n\n  sigstop  # freeze\nlatency\n", 3, []Fault{SigStop, Latency}, ""},
		{"unknown", "kill-leader\nkill-everything\n", 3, nil, `line 2: fault "kill-everything" is unknown`},
		{"needs a quorum", "partition\n", 2, nil, "needs 3 nodes or more, not 2"},
		{"toxics on two nodes", "latency\nbandwidth\nrestart-all\n", 2, []Fault{Latency, Bandwidth, RestartAll}, ""},
		{"empty", "# nothing\n\n", 3, nil, "no fault"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSchedule(strings.NewReader(tc.text), tc.nodes)
			if tc.err != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want ErrConfig saying %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestDefaultScheduleIsEveryFault(t *testing.T) {
	s := DefaultSchedule()
	for _, f := range s {
		if err := f.Validate(3); err != nil {
			t.Error(err)
		}
	}
	if len(s) != len(faults) {
		t.Errorf("the default schedule has %d faults, the package %d", len(s), len(faults))
	}
	s[0] = "changed"
	if DefaultSchedule()[0] == "changed" {
		t.Error("DefaultSchedule returns the package's own slice")
	}
}
