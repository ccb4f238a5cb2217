package cluster

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/protocol"
)

// TestKnownMembersNeverGoBack: a node restarted without a snapshot replays
// its log from the start, and passes the member tables of long ago (the
// bootstrap's, with one member). They must not replace the table it saved
// last, by which its transport authenticates the leader until the replay
// catches up, nor be saved over it. A newer table does replace it.
func TestKnownMembersNeverGoBack(t *testing.T) {
	member := func(id string) Member {
		return Member{ID: id, Address: id + ":1", IdentityKey: scriptKey(id[1:]), Enclave: enclave.Identity{Kind: enclave.KindSim, Measurement: []byte("m")}, JoinedWith: "token-" + id}
	}
	ids := func(k *KnownMembers) []string {
		var out []string
		for _, m := range k.Members {
			out = append(out, m.ID)
		}
		slices.Sort(out)
		return out
	}
	f := NewFSM()
	var saved []KnownMembers
	c := &Cluster{fsm: f, log: slog.New(slog.DiscardHandler), cfg: Config{SaveMembers: func(k KnownMembers) error { saved = append(saved, k); return nil }}}
	c.known.Store(&KnownMembers{ClusterID: "c1", Index: 3, Members: []Member{member("n1"), member("n2")}})
	apply := func(index uint64, cmd []byte) {
		t.Helper()
		if res := f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: cmd}); res != nil {
			if err, ok := res.(error); ok {
				t.Fatalf("apply %d: %v", index, err)
			}
		}
	}
	track := func(apply func()) {
		events, cancel := f.Subscribe(16)
		c.wg.Add(1)
		done := make(chan struct{})
		go func() { c.trackMembers(events); close(done) }()
		apply()
		cancel()
		<-done
	}

	// The replay: the bootstrap's table, at index 1.
	track(func() { apply(1, mustEncode(t, InitCommand("c1", scriptPolicy("sim:m"), member("n1")))) })
	if k := c.known.Load(); k.Index != 3 || !slices.Equal(ids(k), []string{"n1", "n2"}) || len(saved) != 0 {
		t.Fatalf("after replaying index 1: known index %d members %v, %d saved; want the saved table of index 3 kept, nothing saved", k.Index, ids(k), len(saved))
	}
	// The replay goes on past the saved table: n2's join, then n3's.
	expires := time.Unix(3600, 0)
	track(func() {
		apply(2, mustEncode(t, JoinTokenIssuedCommand("token-n2", make([]byte, 32), expires)))
		apply(3, mustEncode(t, MemberAddedCommand(member("n2"))))
		apply(4, mustEncode(t, JoinTokenIssuedCommand("token-n3", make([]byte, 32), expires)))
		apply(5, mustEncode(t, MemberAddedCommand(member("n3"))))
	})
	if k := c.known.Load(); k.Index != 5 || !slices.Equal(ids(k), []string{"n1", "n2", "n3"}) || len(saved) == 0 || saved[len(saved)-1].Index != 5 {
		t.Fatalf("after index 5: known index %d members %v, %d saved; want the table of index 5, saved", k.Index, ids(k), len(saved))
	}
}

// mustEncode encodes cmd as proposed by n1.
func mustEncode(t *testing.T, cmd *protocol.ClusterCommand) []byte {
	t.Helper()
	cmd.Version, cmd.Node, cmd.ProposedAtUnixNano = CommandVersion, "n1", 1_000_000_000
	b, err := EncodeCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
