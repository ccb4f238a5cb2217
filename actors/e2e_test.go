package actors_test

import (
	"testing"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
)

func configChanges() []*protocol.WsConfigChange {
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

// TestSignAndApproveEndToEnd runs one transaction and one request of each
// of the eight config-change types through a real workspace, a one-node
// raft cluster, the keyring and the reference callback server: every one
// is signed or approved, and the workspace verifies them all.
func TestSignAndApproveEndToEnd(t *testing.T) {
	e := newEnv(t)
	e.withHandler("transactions:\n  maxAmount:\n    ETH: \"10\"\n")
	done := e.countCompletions()
	e.start(nil, callback.DefaultBackoff())

	txID := e.submitTx("1.5", "payout")
	var ccIDs []string
	for _, cc := range configChanges() {
		r, err := e.admin.SubmitConfigChange(tctx(t), &protocol.WsSubmitConfigChangeRequest{UserId: e.userID, ConfigChange: cc})
		if err != nil {
			t.Fatal(err)
		}
		ccIDs = append(ccIDs, r.GetId())
	}

	r, info := e.wait(txID)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || info.Outcome != cluster.OutcomeSigned {
		t.Fatalf("transaction: workspace %v, FSM %v (%s)", r.GetState(), info.Outcome, info.Reason)
	}
	if len(r.GetSignatures()) != 1 || len(info.Reserved) != 1 || r.GetSignatures()[0].GetPresignId() != info.Reserved[0].ID {
		t.Fatalf("signatures %v, reserved %v", r.GetSignatures(), info.Reserved)
	}
	if p, _ := e.cl.Presignature(shareID(e.userID), info.Reserved[0].ID); p.Status != cluster.PresignatureUsed {
		t.Errorf("presignature status %v, want used", p.Status)
	}
	for i, id := range ccIDs {
		r, info := e.wait(id)
		if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_APPROVED || info.Outcome != cluster.OutcomeApproved {
			t.Errorf("config change %d: workspace %v, FSM %v (%s)", i, r.GetState(), info.Outcome, info.Reason)
		}
	}
	v := e.verify()
	if v.GetSignaturesChecked() != 1 || v.GetApprovalsChecked() != 8 {
		t.Errorf("verify checked %d signatures and %d approvals, want 1 and 8", v.GetSignaturesChecked(), v.GetApprovalsChecked())
	}
	for _, id := range append(ccIDs, txID) {
		if n := done.get(id); n != 1 {
			t.Errorf("request %s completed %d times", id, n)
		}
	}
	for outcome, want := range map[string]float64{"signed": 1, "approved": 8, "failed": 0, "rejected": 0} {
		if got := counter(e.metrics.Requests.WithLabelValues(outcome)); got != want {
			t.Errorf("requests %s = %v, want %v", outcome, got, want)
		}
	}
	st, err := e.sys.Status()
	if err != nil || len(st.Users) != 1 {
		t.Errorf("status %+v, %v", st, err)
	}
}
