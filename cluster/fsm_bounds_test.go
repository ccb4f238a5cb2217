package cluster

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/protocol"
)

// applier applies commands to an FSM with increasing indexes and times.
type applier struct {
	t   *testing.T
	f   *FSM
	idx uint64
}

func (a *applier) apply(node string, cmd *protocol.ClusterCommand) error {
	a.idx++
	stamp(cmd, node, unixNano(int64(a.idx)*1000))
	b, err := EncodeCommand(cmd)
	if err != nil {
		a.t.Fatal(err)
	}
	if res, ok := a.f.Apply(&raft.Log{Index: a.idx, Data: b}).(error); ok {
		return res
	}
	return nil
}

func (a *applier) must(node string, cmd *protocol.ClusterCommand) {
	a.t.Helper()
	if err := a.apply(node, cmd); err != nil {
		a.t.Fatal(err)
	}
}

// TestSpentSetIsBounded spends more presignatures than the FSM remembers:
// memory stays bounded, the newest spent ids are still recognised, the
// forgotten ones can never be reserved again either, and no Add of any of
// them, however long ago it was spent, is admitted again.
func TestSpentSetIsBounded(t *testing.T) {
	a := &applier{t: t, f: NewFSM()}
	const n = spentRetained + 100
	adds := map[string]*protocol.ClusterCommand{} // by id, as first proposed
	for batch := 0; batch < n; batch += maxBatch {
		var ps []SealedPresignature
		for i := batch; i < min(batch+maxBatch, n); i++ {
			ps = append(ps, SealedPresignature{ID: fmt.Sprintf("p%05d", i), OriginSeq: uint64(i + 1), Sealed: []byte{1}})
		}
		for _, p := range ps {
			adds[p.ID] = PresignaturesAddedCommand("k1", "", []SealedPresignature{p})
		}
		a.must("n1", PresignaturesAddedCommand("k1", "", ps))
	}
	a.must("n1", ClaimCommand("r1", "u1"))
	for i := range n {
		a.must("n1", ReserveCommand("r1", PresignatureRef{KeyID: "k1", ID: fmt.Sprintf("p%05d", i)}))
	}
	a.must("n1", CompleteCommand("r1", OutcomeSigned, ""))
	kp := a.f.st.pools["k1"]
	if len(kp.spent) != spentRetained || len(kp.spentSeqs) != spentRetained || len(kp.live) != 0 {
		t.Fatalf("spent %d (seqs %d), live %d; want %d, %d, 0", len(kp.spent), len(kp.spentSeqs), len(kp.live), spentRetained, spentRetained)
	}
	a.must("n1", ClaimCommand("r2", "u1"))
	last := fmt.Sprintf("p%05d", n-1)
	if err := a.apply("n1", ReserveCommand("r2", PresignatureRef{KeyID: "k1", ID: last})); !errors.Is(err, ErrPresignatureUsed) {
		t.Fatalf("recent spent id: got %v", err)
	}
	// The oldest were forgotten: not reservable, whatever the error.
	if err := a.apply("n1", ReserveCommand("r2", PresignatureRef{KeyID: "k1", ID: "p00000"})); !errors.Is(err, ErrUnknownPresignature) {
		t.Fatalf("forgotten spent id: got %v", err)
	}
	// Replaying any Add, of a recently or a long spent presignature, by its
	// node or another, is refused: its number is at or below the mark, or
	// its sealed share is bound to another node (TestPresignStoreBindsOrigin).
	for _, id := range []string{last, "p00000", "p00001"} {
		if err := a.apply("n1", adds[id]); !errors.Is(err, ErrPresignatureReplayed) {
			t.Fatalf("replayed Add of spent %s: got %v", id, err)
		}
	}
	if d := a.f.PoolDepth("k1"); d != 0 {
		t.Fatalf("pool depth %d after replays, want 0", d)
	}
	// The snapshot of a full window restores to the same bytes.
	st, _ := a.f.EncodeState()
	restored, err := decodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := encodeState(restored)
	if string(again) != string(st) {
		t.Fatal("bounded state does not round-trip")
	}
}

// TestCompletedRequestsAreBounded completes more requests than the FSM
// retains; the oldest are forgotten first.
func TestCompletedRequestsAreBounded(t *testing.T) {
	a := &applier{t: t, f: NewFSM()}
	const n = completedRetained + 10
	for i := range n {
		id := fmt.Sprintf("r%05d", i)
		a.must("n1", ClaimCommand(id, "u1"))
		a.must("n1", CompleteCommand(id, OutcomeApproved, ""))
	}
	if got := len(a.f.st.requests); got != completedRetained {
		t.Fatalf("%d requests retained, want %d", got, completedRetained)
	}
	if _, ok := a.f.Request("r00000"); ok {
		t.Fatal("oldest completion still retained")
	}
	if r, ok := a.f.Request(fmt.Sprintf("r%05d", n-1)); !ok || r.Status != StatusCompleted {
		t.Fatal("newest completion forgotten")
	}
	st, _ := a.f.EncodeState()
	restored, err := decodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(restored.completed) != completedRetained || restored.completed[0] != "r00010" {
		t.Fatalf("restored completion order starts at %q", restored.completed[0])
	}
}
