package actors_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
)

// minuteApart is a retry budget of n attempts one minute apart, without
// jitter.
func minuteApart(n int) callback.Backoff {
	return callback.Backoff{MaxAttempts: n, Initial: time.Minute, Max: time.Minute, Multiplier: 1, Jitter: 0}
}

// noProgress checks that a request has neither completed nor reserved a
// presignature.
func (e *env) noProgress(request string) {
	e.t.Helper()
	if info, ok := e.cl.Request(request); ok && (info.Status == cluster.StatusCompleted || len(info.Reserved) > 0) {
		e.t.Fatalf("request %s progressed without an APPROVE: %+v", request, info)
	}
}

// waitTimer waits until a timer at least d ahead is pending on the fake
// clock (the code under test has started waiting).
func (e *env) waitTimer(d time.Duration) {
	e.t.Helper()
	if err := e.clock.WaitForTimer(tctx(e.t), d); err != nil {
		e.t.Fatal(err)
	}
}

// TestCallbackRejectIsFinal: a REJECT is final, reported with its reason,
// and nothing is reserved or signed.
func TestCallbackRejectIsFinal(t *testing.T) {
	e := newEnv(t)
	e.withHandler("transactions:\n  maxAmount:\n    ETH: \"10\"\n")
	e.start(nil, minuteApart(3))
	id := e.submitTx("50", "too much")
	r, info := e.wait(id)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_REJECTED || info.Outcome != cluster.OutcomeRejected {
		t.Fatalf("workspace %v, FSM %v", r.GetState(), info.Outcome)
	}
	if !strings.Contains(info.Reason, "50") || info.Reason != r.GetReason() {
		t.Errorf("reasons: FSM %q, workspace %q", info.Reason, r.GetReason())
	}
	if len(info.Reserved) != 0 || e.cl.PoolDepth(shareID(e.userID)) != len(e.presigs) {
		t.Errorf("a rejected request reserved %v", info.Reserved)
	}
}

// TestCallbackIgnoreLeavesTheDecision: an IGNORE of a config change is
// neither an approval nor a rejection: nothing is signed, the workspace
// shows the request ignored by this co-signer (still open for its other
// approvers), and the FSM records the outcome ignored. A restarted Session
// that finds it ignored only completes it.
func TestCallbackIgnoreLeavesTheDecision(t *testing.T) {
	e := newEnv(t)
	e.withHandler("configChanges:\n  EXCHANGE: ignore\n")
	e.start(nil, minuteApart(3))
	r0, err := e.admin.SubmitConfigChange(tctx(t), &protocol.WsSubmitConfigChangeRequest{UserId: e.userID, ConfigChange: configChanges()[0]})
	if err != nil {
		t.Fatal(err)
	}
	r, info := e.wait(r0.GetId())
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_IGNORED || info.Outcome != cluster.OutcomeIgnored {
		t.Fatalf("workspace %v, FSM %v (%s)", r.GetState(), info.Outcome, info.Reason)
	}
	if len(r.GetApprovalSignature()) != 0 || !strings.Contains(r.GetReason(), "ignored by this co-signer") {
		t.Errorf("approval %x, workspace reason %q", r.GetApprovalSignature(), r.GetReason())
	}
	if got := counter(e.metrics.Requests.WithLabelValues("approved")); got != 0 {
		t.Errorf("requests approved = %v, want 0", got)
	}
	if v := e.verify(); v.GetApprovalsChecked() != 0 {
		t.Errorf("the workspace checked %d approvals, want 0", v.GetApprovalsChecked())
	}
}

// TestCallbackRetryThenApprove: RETRY backs off on the clock, and the
// request is signed only after the handler approves on the next attempt.
func TestCallbackRetryThenApprove(t *testing.T) {
	e := newEnv(t)
	e.withHandler("retry:\n  - times: 1\n    noteContains: retry-me\n")
	e.start(nil, minuteApart(3))
	id := e.submitTx("1", "please retry-me")
	e.waitTimer(time.Minute) // the backoff after the RETRY
	e.noProgress(id)
	e.clock.Advance(time.Minute)
	r, info := e.wait(id)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || info.Outcome != cluster.OutcomeSigned {
		t.Fatalf("workspace %v, FSM %v (%s)", r.GetState(), info.Outcome, info.Reason)
	}
	if got := counter(e.metrics.CallbackOutcomes.WithLabelValues("RETRY")); got != 1 {
		t.Errorf("RETRY answers = %v, want 1", got)
	}
	e.verify()
}

// TestCallbackUnreachableNeverApproves: an unreachable handler is retried
// within the budget, then the request fails with a reason (I5).
func TestCallbackUnreachableNeverApproves(t *testing.T) {
	e := newEnv(t)
	e.withHandler("{}")
	dead := httptest.NewServer(http.NotFoundHandler())
	e.handlerURL = dead.URL
	dead.Close() // nothing listens there now
	e.start(nil, minuteApart(2))
	id := e.submitTx("1", "x")
	e.waitTimer(time.Minute)
	e.noProgress(id)
	e.clock.Advance(time.Minute)
	r, info := e.wait(id)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_FAILED || info.Outcome != cluster.OutcomeFailed {
		t.Fatalf("workspace %v, FSM %v", r.GetState(), info.Outcome)
	}
	if !strings.Contains(info.Reason, "unreachable") || len(info.Reserved) != 0 {
		t.Errorf("reason %q, reserved %v", info.Reason, info.Reserved)
	}
}

// TestCallbackTimeoutNeverApproves: a handler that never answers times out
// on the clock, and the request fails with a reason (I5).
func TestCallbackTimeoutNeverApproves(t *testing.T) {
	e := newEnv(t)
	e.withHandler("{}")
	stuck := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stuck:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(silent.Close)
	t.Cleanup(func() { close(stuck) })
	e.handlerURL = silent.URL
	e.start(nil, minuteApart(1))
	id := e.submitTx("1", "x")
	e.waitTimer(10 * time.Second) // the attempt's timeout
	e.noProgress(id)
	e.clock.Advance(10 * time.Second)
	r, info := e.wait(id)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_FAILED || info.Outcome != cluster.OutcomeFailed {
		t.Fatalf("workspace %v, FSM %v", r.GetState(), info.Outcome)
	}
	if !strings.Contains(info.Reason, "in time") || len(info.Reserved) != 0 {
		t.Errorf("reason %q, reserved %v", info.Reason, info.Reserved)
	}
}

// TestRecordedRejectionStands: a REJECT the cluster recorded (by an owner
// that then handed the request back, or crashed) is reported by the next
// Session without asking the handler again, whose policy would now
// approve. A recorded decision about other content does not count.
func TestRecordedRejectionStands(t *testing.T) {
	e := newEnv(t)
	e.withHandler("transactions:\n  maxAmount:\n    ETH: \"10\"\n")
	id := e.submitTx("5", "within the limit")
	other := e.submitTx("6", "within the limit too")
	ctx := tctx(t)
	list, err := e.admin.ListRequests(ctx, &protocol.WsListRequestsRequest{UserId: e.userID})
	if err != nil {
		t.Fatal(err)
	}
	digests := map[string][]byte{}
	for _, r := range list.GetRequests() {
		if digests[r.GetId()], err = actors.ContentDigestOf(r); err != nil {
			t.Fatal(err)
		}
	}
	for req, digest := range map[string][]byte{id: digests[id], other: digests[id]} {
		if err := e.cl.Claim(ctx, req, e.userID); err != nil {
			t.Fatal(err)
		}
		if err := e.cl.Decide(ctx, req, cluster.Decision{Action: "REJECT", Reason: "recorded by the last owner", ContentDigest: digest}); err != nil {
			t.Fatal(err)
		}
	}
	e.start(nil, minuteApart(3))
	r, info := e.wait(id)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_REJECTED || info.Outcome != cluster.OutcomeRejected || r.GetReason() != "recorded by the last owner" {
		t.Fatalf("workspace %v (%s), FSM %v", r.GetState(), r.GetReason(), info.Outcome)
	}
	if r, _ := e.wait(other); r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED {
		t.Fatalf("a decision about other content stood: %v (%s)", r.GetState(), r.GetReason())
	}
	if n := counter(e.metrics.CallbackOutcomes.WithLabelValues("APPROVE")); n != 1 {
		t.Errorf("the handler approved %v times, want once (the other request only)", n)
	}
}
