package cluster

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/protocol"
)

// TestRestoreRefusesBadUserCallbacks: a snapshot whose users' handlers
// could not have come from the commands is refused, not restored.
func TestRestoreRefusesBadUserCallbacks(t *testing.T) {
	handler := func(user, url, key string) *protocol.ClusterUserCallback {
		return &protocol.ClusterUserCallback{UserId: user, Callback: &protocol.ClusterCallback{Url: url, HandlerKey: []byte(key)}}
	}
	tests := []struct {
		name     string
		handlers []*protocol.ClusterUserCallback
	}{
		{"unknown user", []*protocol.ClusterUserCallback{handler("ws/bob", "https://b.example", "k")}},
		{"twice", []*protocol.ClusterUserCallback{handler("ws/alice", "https://a.example", "k"), handler("ws/alice", "https://b.example", "k")}},
		{"no url", []*protocol.ClusterUserCallback{handler("ws/alice", "", "k")}},
		{"no key", []*protocol.ClusterUserCallback{handler("ws/alice", "https://a.example", "")}},
		{"no handler", []*protocol.ClusterUserCallback{{UserId: "ws/alice"}}},
		{"no user", []*protocol.ClusterUserCallback{handler("", "https://a.example", "k")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &protocol.ClusterState{
				Version:       StateVersion,
				ApiUsers:      []*protocol.ClusterRecord{{Id: "ws/alice", Sealed: []byte("ct")}},
				UserCallbacks: tt.handlers,
			}
			b, err := proto.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeState(b); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("decodeState: %v, want ErrBadCommand", err)
			}
		})
	}
}
