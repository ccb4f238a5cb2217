package workspace_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
	"google.golang.org/grpc/codes"
)

func allConfigChanges() []*protocol.WsConfigChange {
	return []*protocol.WsConfigChange{
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_EXCHANGE, Payload: &protocol.WsConfigChange_Exchange{Exchange: &protocol.WsExchangeAccount{ExchangeType: "BINANCE", Name: "main"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_FIAT_ACCOUNT, Payload: &protocol.WsConfigChange_FiatAccount{FiatAccount: &protocol.WsFiatAccount{Provider: "bank", Name: "ops", AccountNumber: "DE89", Currency: "EUR"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_UNMANAGED_WALLET, Payload: &protocol.WsConfigChange_UnmanagedWallet{UnmanagedWallet: &protocol.WsUnmanagedWallet{Name: "cold", Asset: "BTC", Address: "bc1q"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ADD_NETWORK_CONNECTION, Payload: &protocol.WsConfigChange_NetworkConnection{NetworkConnection: &protocol.WsNetworkConnection{PeerNetworkId: "n-1", Name: "desk"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ADD_USER, Payload: &protocol.WsConfigChange_AddUser{AddUser: &protocol.WsAddUser{Email: "a@b.c", Role: "SIGNER"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_CHANGE_QUORUM_THRESHOLD, Payload: &protocol.WsConfigChange_QuorumChange{QuorumChange: &protocol.WsQuorumChange{OldThreshold: 2, NewThreshold: 3, Admins: 5}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_RE_ENROLL_DEVICE, Payload: &protocol.WsConfigChange_DeviceReEnroll{DeviceReEnroll: &protocol.WsDeviceReEnroll{UserEmail: "a@b.c", DeviceId: "d-1"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ENABLE_ONE_TIME_ADDRESS, Payload: &protocol.WsConfigChange_OneTimeAddress{OneTimeAddress: &protocol.WsOneTimeAddress{Enabled: true}}},
	}
}

// TestApprovals approves one request of each of the eight config-change
// types through a poller, and checks that a bad approval is refused and the
// request stays pending, and that rejections and failures are recorded.
func TestApprovals(t *testing.T) {
	e := serve(t, t.TempDir(), clock.Real())
	c := ctx(t)
	n := e.pair(protocol.WsRole_WS_ROLE_APPROVER)
	uid := n.creds.UserID

	stream, err := n.c.Poll(c, &protocol.WsPollRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := stream.Recv(); err != nil || !ev.CaughtUp {
		t.Fatalf("first event = %v, %v", ev, err)
	}
	changes := allConfigChanges()
	for _, cc := range changes {
		if _, err := e.admin.SubmitConfigChange(c, &protocol.WsSubmitConfigChangeRequest{UserId: uid, ConfigChange: cc}); err != nil {
			t.Fatal(err)
		}
	}
	extra := make([]*protocol.WsRequest, 3)
	for i := range extra {
		if extra[i], err = e.admin.SubmitConfigChange(c, &protocol.WsSubmitConfigChangeRequest{UserId: uid, ConfigChange: changes[i]}); err != nil {
			t.Fatal(err)
		}
	}

	var delivered []*protocol.WsRequest
	for len(delivered) < len(changes)+len(extra) {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		delivered = append(delivered, ev.Request)
	}
	for _, r := range delivered[:len(changes)] {
		res, err := n.c.Approve(c, r, n.approval)
		if err != nil {
			t.Fatalf("approve %s: %v", r.GetConfigChange().GetType(), err)
		}
		if res.Request.State != protocol.WsRequestState_WS_REQUEST_STATE_APPROVED || res.Duplicate {
			t.Fatalf("approve %s: %v", r.GetConfigChange().GetType(), res)
		}
	}
	again, err := n.c.Approve(c, delivered[0], n.approval)
	if err != nil || !again.Duplicate {
		t.Fatalf("second approval = %v, %v", again, err)
	}

	// A bad approval (another key) is refused and the request stays open.
	_, stranger, _ := ed25519.GenerateKey(nil)
	_, err = n.c.Approve(c, extra[0], stranger)
	wantCode(t, "approval with another key", err, codes.InvalidArgument, "does not verify")
	// An approval over a different payload (the request as the node wrongly
	// saw it) is refused too.
	altered := delivered[len(changes)+1]
	altered.GetConfigChange().GetFiatAccount().AccountNumber = "GB00"
	_, err = n.c.Approve(c, altered, n.approval)
	wantCode(t, "approval of an altered payload", err, codes.InvalidArgument, "does not verify")
	if r, _ := n.c.GetRequest(c, &protocol.WsGetRequestRequest{RequestId: extra[0].Id}); r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_DELIVERED {
		t.Fatalf("after a bad approval the request is %v", r.GetState())
	}

	if r, err := n.c.RejectRequest(c, &protocol.WsRejectRequest{RequestId: extra[0].Id, Reason: "policy: exchange not allowed"}); err != nil || r.Reason != "policy: exchange not allowed" {
		t.Fatalf("reject = %v, %v", r, err)
	}
	if r, err := n.c.FailRequest(c, &protocol.WsFailRequest{RequestId: extra[1].Id, Reason: "callback: no answer after 20 tries"}); err != nil || r.State != protocol.WsRequestState_WS_REQUEST_STATE_FAILED {
		t.Fatalf("fail = %v, %v", r, err)
	}
	_, err = n.c.Approve(c, extra[0], n.approval)
	wantCode(t, "approval after rejection", err, codes.FailedPrecondition, "is rejected")
	if r, err := n.c.ClaimRequest(c, &protocol.WsClaimRequest{RequestId: extra[2].Id, Claimant: "node-1"}); err != nil || r.State != protocol.WsRequestState_WS_REQUEST_STATE_CLAIMED {
		t.Fatalf("claim = %v, %v", r, err)
	}

	v, err := e.admin.Verify(c, &protocol.WsVerifyRequest{})
	if err != nil || v.ApprovalsChecked != uint64(len(changes)) || len(v.Problems) != 0 {
		t.Fatalf("verify = %v, %v", v, err)
	}
	audit, err := e.admin.ListAudit(c, &protocol.WsListAuditRequest{})
	if err != nil || len(audit.Entries) < len(changes)*2 {
		t.Fatalf("audit = %d entries, %v", len(audit.GetEntries()), err)
	}
	e.ws.Sweep()
	users, err := e.admin.ListUsers(c, &protocol.WsListUsersRequest{})
	if err != nil || len(users.Users) != 1 || time.Since(time.Unix(0, users.Users[0].LastSeenAt)) > time.Minute {
		t.Fatalf("users = %v, %v", users, err)
	}
}
