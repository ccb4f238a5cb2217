package cluster

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestRemovalRule checks the rule the leader applies to a removal, by its
// own view of which voters are reachable.
func TestRemovalRule(t *testing.T) {
	voters := func(ids ...string) []Server {
		var out []Server
		for _, id := range ids {
			out = append(out, Server{ID: id, Voter: true})
		}
		return out
	}
	down := func(ids ...string) func(string) bool {
		return func(id string) bool { return !slices.Contains(ids, id) }
	}
	tests := []struct {
		name    string
		servers []Server
		down    []string
		want    string // empty: allowed
	}{
		{"last voter", voters("n1"), nil, `"n1" is the last voter`},
		{"last voter with a non-voter", append(voters("n1"), Server{ID: "n2"}), nil, "last voter"},
		{"three, all up", voters("n1", "n2", "n3"), nil, ""},
		{"three, one other down", voters("n1", "n2", "n3"), []string{"n3"}, "1 of the other 2 voters are reachable from the leader n2, short of a quorum of 2"},
		{"five, one other down", voters("n1", "n2", "n3", "n4", "n5"), []string{"n5"}, ""},
		{"five, two others down", voters("n1", "n2", "n3", "n4", "n5"), []string{"n4", "n5"}, "2 of the other 4 voters"},
		{"a non-voter leaves freely", append(voters("n2"), Server{ID: "n1"}), nil, ""},
		{"not in raft", voters("n2"), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := removalRule(tt.servers, "n1", "n2", down(tt.down...))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrMember) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrMember with %q", err, tt.want)
			}
		})
	}
}
