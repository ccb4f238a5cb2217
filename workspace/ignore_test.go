package workspace_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
	"google.golang.org/grpc/codes"
)

// TestIgnore checks the co-signer's IGNORE answer to a config change: the
// request becomes IGNORED, shows "ignored by this co-signer" with the
// handler's reason, stays open for other approvers (and expires if none
// decides), and a second answer is an idempotent duplicate. A transaction,
// a finished request and a signer-only user cannot ignore.
func TestIgnore(t *testing.T) {
	clk := clock.NewFake(time.Now())
	e := serve(t, fixtureDir(t), clk)
	c := ctx(t)
	n := e.fixtureSigner() // role both
	uid := n.creds.UserID
	submit := func() *protocol.WsRequest {
		t.Helper()
		r, err := e.admin.SubmitConfigChange(c, &protocol.WsSubmitConfigChangeRequest{UserId: uid, ConfigChange: configChange(), TtlSeconds: 3600})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	cc := submit()
	r, err := n.c.IgnoreRequest(c, &protocol.WsIgnoreRequest{RequestId: cc.Id, Reason: "leave it to the admins"})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != protocol.WsRequestState_WS_REQUEST_STATE_IGNORED || r.Reason != "ignored by this co-signer: leave it to the admins" {
		t.Fatalf("ignored request = %v, %q", r.State, r.Reason)
	}
	again, err := n.c.IgnoreRequest(c, &protocol.WsIgnoreRequest{RequestId: cc.Id})
	if err != nil || again.State != protocol.WsRequestState_WS_REQUEST_STATE_IGNORED || again.DuplicateCompletions != 1 {
		t.Fatalf("second ignore = %v, %v", again, err)
	}
	// It stays open: the other approvers still decide it.
	open, err := e.ws.Store().OpenAfter(uid, 0, 100)
	if err != nil || !slices.ContainsFunc(open, func(o *protocol.WsRequest) bool { return o.Id == cc.Id }) {
		t.Fatalf("an ignored request left the open requests: %v", err)
	}
	listed, err := e.admin.ListRequests(c, &protocol.WsListRequestsRequest{State: protocol.WsRequestState_WS_REQUEST_STATE_IGNORED})
	if err != nil || len(listed.Requests) != 1 || listed.Requests[0].Id != cc.Id {
		t.Fatalf("ignored requests = %v, %v", listed, err)
	}

	bare := submit()
	if r, err := n.c.IgnoreRequest(c, &protocol.WsIgnoreRequest{RequestId: bare.Id}); err != nil || r.Reason != "ignored by this co-signer" {
		t.Fatalf("ignore without a reason = %v, %v", r, err)
	}

	tx := e.submitTx(uid, "")
	_, err = n.c.IgnoreRequest(c, &protocol.WsIgnoreRequest{RequestId: tx.Id})
	wantCode(t, "ignore of a transaction", err, codes.FailedPrecondition, "IGNORE is for config changes only")
	if got, _ := n.c.GetRequest(c, &protocol.WsGetRequestRequest{RequestId: tx.Id}); got.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_PENDING {
		t.Fatalf("a refused ignore changed the transaction to %v", got.GetState())
	}
	rejected := submit()
	if _, err := n.c.RejectRequest(c, &protocol.WsRejectRequest{RequestId: rejected.Id, Reason: "no"}); err != nil {
		t.Fatal(err)
	}
	_, err = n.c.IgnoreRequest(c, &protocol.WsIgnoreRequest{RequestId: rejected.Id})
	wantCode(t, "ignore after a rejection", err, codes.FailedPrecondition, "is rejected")
	_, err = n.c.IgnoreRequest(c, &protocol.WsIgnoreRequest{RequestId: submit().Id, Reason: strings.Repeat("x", 2000)})
	wantCode(t, "ignore with a long reason", err, codes.InvalidArgument, "reason is longer")

	_, tok := e.createUser(protocol.WsRole_WS_ROLE_SIGNER)
	signer := e.pairOnly(tok)
	_, err = signer.c.IgnoreRequest(c, &protocol.WsIgnoreRequest{RequestId: cc.Id})
	wantCode(t, "ignore by a signer", err, codes.PermissionDenied, "needs an approver")

	// Nobody else decides: it expires, saying it was ignored.
	clk.Advance(2 * time.Hour)
	e.ws.Sweep()
	got, err := n.c.GetRequest(c, &protocol.WsGetRequestRequest{RequestId: cc.Id})
	if err != nil || got.State != protocol.WsRequestState_WS_REQUEST_STATE_EXPIRED || !strings.Contains(got.Reason, "after this co-signer ignored it") {
		t.Fatalf("ignored request after its expiry = %v, %v", got, err)
	}
}
