package node

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/client"
)

// fixtureRootB is a second workspace's fixture: another workspace ID, and
// again a signer u-0001 (see workspace/internal/fixturegen).
const fixtureRootB = "../workspace/testdata/signer-2of2-b"

// legacyRecords rewrites a user's records as a node wrote them before it
// told workspaces apart: the user id alone as the API-user record's id and
// as its keys' owner and name.
func legacyRecords(t testing.TB, n *Node) func(u *User, keys []cluster.Record, rec cluster.Record) ([]cluster.Record, cluster.Record) {
	return func(u *User, keys []cluster.Record, rec cluster.Record) ([]cluster.Record, cluster.Record) {
		t.Helper()
		renamed := map[string]string{}
		for i, k := range keys {
			plain, err := n.kr.Decrypt(k.ID, k.Sealed)
			if err != nil {
				t.Fatal(err)
			}
			id := "user/" + u.Info.ID + strings.TrimPrefix(k.ID, "user/"+u.RecordID)
			sealed, err := n.kr.Encrypt(id, plain)
			if err != nil {
				t.Fatal(err)
			}
			renamed[k.ID] = id
			keys[i] = cluster.Record{ID: id, OwnerID: u.Info.ID, Public: k.Public, Sealed: sealed}
		}
		u.Info.ApprovalRecord, u.Info.ShareRecord = renamed[u.Info.ApprovalRecord], renamed[u.Info.ShareRecord]
		pub, err := json.Marshal(u.Info)
		if err != nil {
			t.Fatal(err)
		}
		creds, err := n.kr.Decrypt(apiUserSealID(rec.ID), rec.Sealed)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := n.kr.Encrypt(apiUserSealID(u.Info.ID), creds)
		if err != nil {
			t.Fatal(err)
		}
		u.RecordID = u.Info.ID
		return keys, cluster.Record{ID: u.Info.ID, Public: pub, Sealed: sealed}
	}
}

// submitBoth queues two transactions for signer and two config changes for
// approver in a workspace, and returns their IDs.
func submitBoth(t testing.TB, admin *client.Admin, signer, approver string) []string {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	var ids []string
	for _, amount := range []string{"1", "2"} {
		r, err := admin.SubmitTransaction(ctx, &protocol.WsSubmitTransactionRequest{UserId: signer, Transaction: &protocol.WsTransaction{
			Asset: "ETH", Amount: amount, Source: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
			Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "0xabc"}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.GetId())
	}
	for _, cc := range allConfigChanges()[:2] {
		r, err := admin.SubmitConfigChange(ctx, &protocol.WsSubmitConfigChangeRequest{UserId: approver, ConfigChange: cc})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.GetId())
	}
	return ids
}

// wantDone checks that a workspace signed the transactions and approved the
// config changes that submitBoth queued, and verifies them.
func wantDone(t testing.TB, name string, admin *client.Admin, ids []string) {
	t.Helper()
	got := waitTerminal(t, admin, ids, 2*time.Minute)
	for i, id := range ids {
		want := protocol.WsRequestState_WS_REQUEST_STATE_APPROVED
		if i < 2 {
			want = protocol.WsRequestState_WS_REQUEST_STATE_SIGNED
		}
		if got[id].GetState() != want {
			t.Errorf("workspace %s, %s: %v (%s), want %v", name, id, got[id].GetState(), got[id].GetReason(), want)
		}
	}
	v, err := admin.Verify(ctxT(t, time.Minute), &protocol.WsVerifyRequest{})
	if err != nil || len(v.GetProblems()) != 0 || v.GetSignaturesChecked() < 2 || v.GetApprovalsChecked() < 2 {
		t.Fatalf("workspace %s: verify %v %v", name, v, err)
	}
}

// TestTwoWorkspaces serves the API users of two workspace simulators from
// one node, with the same user IDs in both: each workspace's signer u-0001
// (imported from the two fixtures; the first with the records a node wrote
// before it told workspaces apart) and each one's approver u-0002, paired
// live. Requests of both workspaces are signed and approved, `node users`
// names each user's workspace, and a restart serves all four again.
func TestTwoWorkspaces(t *testing.T) {
	dir := t.TempDir()
	wsA, wsB := filepath.Join(dir, "ws-a"), filepath.Join(dir, "ws-b")
	copyDir(t, filepath.Join(fixtureRoot, "ws"), wsA)
	copyDir(t, filepath.Join(fixtureRootB, "ws"), wsB)
	a, adminA := testWorkspace(t, wsA)
	b, adminB := testWorkspace(t, wsB)
	if a.ID() == b.ID() {
		t.Fatalf("both workspaces are %s", a.ID())
	}
	cfg := testConfig(t, dir)
	n := startNode(t, cfg)
	signerA, _ := importFixtureFrom(t, n, fixtureRoot, a.Addr(), legacyRecords(t, n))
	signerB, _ := importFixtureFrom(t, n, fixtureRootB, b.Addr(), nil)
	if signerA.Info.ID != signerB.Info.ID || signerA.RecordID == signerB.RecordID {
		t.Fatalf("signers %s (record %s) and %s (record %s)", signerA.Info.ID, signerA.RecordID, signerB.Info.ID, signerB.RecordID)
	}

	ctx := ctxT(t, time.Minute)
	idA, tokA := createUser(t, adminA, protocol.WsRole_WS_ROLE_APPROVER)
	idB, tokB := createUser(t, adminB, protocol.WsRole_WS_ROLE_APPROVER)
	if idA != idB {
		t.Fatalf("approvers %s and %s: want the same id in both workspaces", idA, idB)
	}
	approverA, err := n.Pair(ctx, PairRequest{Token: tokA})
	if err != nil {
		t.Fatal(err)
	}
	approverB, err := n.Pair(ctx, PairRequest{Token: tokB})
	if err != nil {
		t.Fatalf("pairing %s of a second workspace: %v", idB, err)
	}
	if approverA.WorkspaceID != a.ID() || approverB.WorkspaceID != b.ID() {
		t.Fatalf("paired approvers of workspaces %s and %s", approverA.WorkspaceID, approverB.WorkspaceID)
	}
	if _, err := n.Pair(ctx, PairRequest{Token: tokB}); !errors.Is(err, ErrAlreadyPaired) || !strings.Contains(err.Error(), b.ID()) {
		t.Fatalf("pairing %s of workspace %s again: %v", idB, b.ID(), err)
	}
	// The legacy record still counts as paired, for its own workspace only.
	if !n.paired(a.ID(), signerA.Info.ID) || n.paired("ws-other", signerA.Info.ID) {
		t.Fatal("the legacy record of the first workspace's signer is not told apart")
	}

	events, unsub := n.cluster.Subscribe(1024)
	defer unsub()
	idsA := submitBoth(t, adminA, signerA.Info.ID, idA)
	idsB := submitBoth(t, adminB, signerB.Info.ID, idB)
	wantDone(t, "a", adminA, idsA)
	wantDone(t, "b", adminB, idsB)
	// The FSM records each completion just after the workspace does.
	timeout := time.After(time.Minute)
	for _, id := range append(idsA, idsB...) {
		for info, ok := n.cluster.Request(id); !ok || info.Status != cluster.StatusCompleted; info, ok = n.cluster.Request(id) {
			select {
			case <-events:
			case <-timeout:
				t.Fatalf("FSM request %s: %+v", id, info)
			}
		}
	}

	ac, err := NewAdminClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	users, err := ac.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, u := range users {
		listed = append(listed, u.WorkspaceID+"/"+u.ID)
	}
	want := []string{a.ID() + "/u-0001", a.ID() + "/u-0002", b.ID() + "/u-0001", b.ID() + "/u-0002"}
	if strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Fatalf("node users: %v, want %v", listed, want)
	}

	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2 := startNode(t, cfg)
	if got := n2.Users(); len(got) != 4 {
		t.Fatalf("after a restart: %+v", got)
	}
	// The first fixture has a third presignature: the legacy signer still
	// signs after the restart, and the second workspace's approver still
	// approves.
	ctx = ctxT(t, time.Minute)
	tx, err := adminA.SubmitTransaction(ctx, &protocol.WsSubmitTransactionRequest{UserId: signerA.Info.ID, Transaction: &protocol.WsTransaction{
		Asset: "ETH", Amount: "3", Source: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
		Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "0xabc"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := adminB.SubmitConfigChange(ctx, &protocol.WsSubmitConfigChangeRequest{UserId: idB, ConfigChange: allConfigChanges()[2]})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitTerminal(t, adminA, []string{tx.GetId()}, 2*time.Minute)[tx.GetId()]; got.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED {
		t.Fatalf("after a restart, %s of workspace %s: %v (%s)", tx.GetId(), a.ID(), got.GetState(), got.GetReason())
	}
	if got := waitTerminal(t, adminB, []string{cc.GetId()}, 2*time.Minute)[cc.GetId()]; got.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_APPROVED {
		t.Fatalf("after a restart, %s of workspace %s: %v (%s)", cc.GetId(), b.ID(), got.GetState(), got.GetReason())
	}
}
