package protocol

import (
	"encoding/hex"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
)

func approvalRequest() *WsRequest {
	return &WsRequest{
		Id:          "r-00000001",
		WorkspaceId: "default",
		UserId:      "u-1",
		State:       WsRequestState_WS_REQUEST_STATE_PENDING,
		Body: &WsRequest_ConfigChange{ConfigChange: &WsConfigChange{
			Type: WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_UNMANAGED_WALLET,
			Payload: &WsConfigChange_UnmanagedWallet{UnmanagedWallet: &WsUnmanagedWallet{
				Name: "cold", Asset: "ETH", Address: "0xabc",
			}},
		}},
	}
}

// TestApprovalDigestGolden pins the encoding (the value was computed
// independently from the documented layout): a change here breaks every
// deployed approver, so it must be deliberate.
func TestApprovalDigestGolden(t *testing.T) {
	d, err := ApprovalDigest(approvalRequest())
	if err != nil {
		t.Fatal(err)
	}
	const want = "9089ecadeba9903cf9759c5cb33115c8bb525554ea9b0d91f70339cac56df598"
	if got := hex.EncodeToString(d[:]); got != want {
		t.Fatalf("digest = %s, want %s", got, want)
	}
}

func TestApprovalDigestCoversContentNotState(t *testing.T) {
	base, err := ApprovalDigest(approvalRequest())
	if err != nil {
		t.Fatal(err)
	}
	same := approvalRequest()
	same.State = WsRequestState_WS_REQUEST_STATE_DELIVERED
	same.UpdatedAt = 99
	same.ApprovalSignature = []byte{1}
	if d, _ := ApprovalDigest(same); d != base {
		t.Error("state, times or signature changed the digest")
	}
	changes := map[string]func(r *WsRequest){
		"request id":   func(r *WsRequest) { r.Id = "r-2" },
		"user":         func(r *WsRequest) { r.UserId = "u-2" },
		"workspace":    func(r *WsRequest) { r.WorkspaceId = "other" },
		"type":         func(r *WsRequest) { r.GetConfigChange().Type = WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_EXCHANGE },
		"address":      func(r *WsRequest) { r.GetConfigChange().GetUnmanagedWallet().Address = "0xabd" },
		"field shift":  func(r *WsRequest) { w := r.GetConfigChange().GetUnmanagedWallet(); w.Name, w.Asset = "coldE", "TH" },
		"empty to tag": func(r *WsRequest) { r.GetConfigChange().GetUnmanagedWallet().Tag = "x" },
	}
	for name, change := range changes {
		r := approvalRequest()
		change(r)
		d, err := ApprovalDigest(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d == base {
			t.Errorf("%s: digest did not change", name)
		}
	}
}

func TestApprovalDigestRefuses(t *testing.T) {
	withUnknown := approvalRequest()
	b, err := proto.Marshal(withUnknown.GetConfigChange())
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, 0xf8, 0x01, 0x01) // field 31, varint 1: unknown to this schema
	cc := &WsConfigChange{}
	if err := proto.Unmarshal(b, cc); err != nil {
		t.Fatal(err)
	}
	withUnknown.Body = &WsRequest_ConfigChange{ConfigChange: cc}

	noUser := approvalRequest()
	noUser.UserId = ""
	tx := &WsRequest{Id: "r", WorkspaceId: "w", UserId: "u", Body: &WsRequest_Transaction{Transaction: &WsTransaction{}}}

	for name, r := range map[string]*WsRequest{"nil": nil, "unknown fields": withUnknown, "no user": noUser, "transaction": tx} {
		if _, err := ApprovalDigest(r); !errors.Is(err, ErrApprovalInput) {
			t.Errorf("%s: err = %v, want ErrApprovalInput", name, err)
		}
	}
}
