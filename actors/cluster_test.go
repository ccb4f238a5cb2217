package actors_test

import (
	"testing"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
)

// TestThreeNodesClaimEachRequestOnce runs the actors of three raft nodes
// against one workspace user: every node polls and tries to claim every
// request, followers through the leader. Each request is owned by one node
// (I2), completes exactly once, and is signed or approved once; no
// presignature is used twice (I1).
func TestThreeNodesClaimEachRequestOnce(t *testing.T) {
	e := newEnvWith(t, -1, 3)
	done := e.countCompletions()
	for i := range e.h.Nodes {
		e.startOn(e.h.Node(i), nil, minuteApart(3))
	}
	var ids []string
	for range e.presigs {
		ids = append(ids, e.submitTx("1", "three nodes"))
	}
	for _, cc := range configChanges() {
		r, err := e.admin.SubmitConfigChange(tctx(t), &protocol.WsSubmitConfigChangeRequest{UserId: e.userID, ConfigChange: cc})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.GetId())
	}
	owners := map[string]int{}
	used := map[string]string{}
	for _, id := range ids {
		r, info := e.wait(id)
		if info.Outcome != cluster.OutcomeSigned && info.Outcome != cluster.OutcomeApproved {
			t.Errorf("%s: FSM %v (%s), workspace %v", id, info.Outcome, info.Reason, r.GetState())
		}
		if info.Attempt != 1 || r.GetDuplicateCompletions() != 0 {
			t.Errorf("%s: attempt %d, %d duplicate completions", id, info.Attempt, r.GetDuplicateCompletions())
		}
		owners[info.LastOwner]++
		for _, sig := range r.GetSignatures() {
			if prev, ok := used[sig.GetPresignId()]; ok {
				t.Errorf("presignature %s used by %s and %s", sig.GetPresignId(), prev, id)
			}
			used[sig.GetPresignId()] = id
		}
	}
	for _, id := range ids {
		if n := done.get(id); n != 1 {
			t.Errorf("request %s completed %d times", id, n)
		}
	}
	t.Logf("requests per owner: %v", owners)
	v := e.verify()
	if v.GetSignaturesChecked() != uint64(len(e.presigs)) || v.GetApprovalsChecked() != 8 {
		t.Errorf("verified %d signatures and %d approvals", v.GetSignaturesChecked(), v.GetApprovalsChecked())
	}
}
