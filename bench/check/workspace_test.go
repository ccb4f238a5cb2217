package check_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/coterie-mpc/coterie/bench/check"
	"github.com/coterie-mpc/coterie/protocol"
	"google.golang.org/grpc"
)

// fakeWorkspace answers the admin listings from fixed pages, as the
// workspace pages them: by seq, with next_after_seq 0 on the last page.
type fakeWorkspace struct {
	users    []*protocol.WsUser
	requests [][]*protocol.WsRequest
	audit    [][]*protocol.WsAuditEntry
	// stuck makes the request listing answer the same cursor forever.
	stuck bool
}

var _ check.Workspace = (*fakeWorkspace)(nil)

func (f *fakeWorkspace) ListUsers(context.Context, *protocol.WsListUsersRequest, ...grpc.CallOption) (*protocol.WsListUsersResponse, error) {
	return &protocol.WsListUsersResponse{Users: f.users}, nil
}

func (f *fakeWorkspace) ListRequests(_ context.Context, in *protocol.WsListRequestsRequest, _ ...grpc.CallOption) (*protocol.WsListRequestsResponse, error) {
	i := int(in.GetAfterSeq())
	resp := &protocol.WsListRequestsResponse{Requests: f.requests[i]}
	switch {
	case f.stuck:
		resp.NextAfterSeq = 1
	case i+1 < len(f.requests):
		resp.NextAfterSeq = uint64(i + 1)
	}
	return resp, nil
}

func (f *fakeWorkspace) ListAudit(_ context.Context, in *protocol.WsListAuditRequest, _ ...grpc.CallOption) (*protocol.WsListAuditResponse, error) {
	i := int(in.GetAfterSeq())
	resp := &protocol.WsListAuditResponse{Entries: f.audit[i]}
	if i+1 < len(f.audit) {
		resp.NextAfterSeq = uint64(i + 1)
	}
	return resp, nil
}

// workspaceOf answers recs as the workspace would, two requests a page.
func workspaceOf(recs check.Records) *fakeWorkspace {
	f := &fakeWorkspace{}
	for id, k := range recs.Keys {
		f.users = append(f.users, &protocol.WsUser{Id: id, SigningKey: &protocol.WsSigningKey{PublicKey: k.PublicKey, ChainCode: k.ChainCode}})
	}
	states := map[check.State]protocol.WsRequestState{
		check.StateSigned: protocol.WsRequestState_WS_REQUEST_STATE_SIGNED, check.StateApproved: protocol.WsRequestState_WS_REQUEST_STATE_APPROVED,
		check.StateRejected: protocol.WsRequestState_WS_REQUEST_STATE_REJECTED, check.StateFailed: protocol.WsRequestState_WS_REQUEST_STATE_FAILED,
		check.StatePending: protocol.WsRequestState_WS_REQUEST_STATE_PENDING,
	}
	for i, r := range recs.Requests {
		w := &protocol.WsRequest{Id: r.ID, UserId: r.UserID, State: states[r.State], Reason: r.Reason}
		if r.Approved {
			w.ApprovalSignature = []byte("approval")
		}
		if len(r.Digests) > 0 {
			tx := &protocol.WsTransaction{}
			for _, d := range r.Digests {
				tx.Digests = append(tx.Digests, &protocol.WsDigestToSign{Digest: d.Digest, DerivationPath: d.Path})
			}
			w.Body = &protocol.WsRequest_Transaction{Transaction: tx}
		}
		for _, s := range r.Signatures {
			w.Signatures = append(w.Signatures, &protocol.WsDigestSignature{Index: s.Index, Signature: s.Sig, PresignId: s.PresignID})
		}
		if i%2 == 0 {
			f.requests = append(f.requests, nil)
		}
		f.requests[len(f.requests)-1] = append(f.requests[len(f.requests)-1], w)
	}
	f.audit = [][]*protocol.WsAuditEntry{{{Seq: 1, Action: "request.submit", RequestId: "r1"}}}
	for i, u := range recs.Ledger {
		f.audit = append(f.audit, []*protocol.WsAuditEntry{{Seq: uint64(i + 2), Action: "presignature.use", RequestId: u.RequestID,
			Detail: fmt.Sprintf("presignature=%s digest=%d", u.PresignID, u.DigestIndex)}})
	}
	return f
}

func TestFromWorkspace(t *testing.T) {
	recs := clean(t)
	got, err := check.FromWorkspace(context.Background(), workspaceOf(recs))
	if err != nil {
		t.Fatal(err)
	}
	got.Nodes, got.Callback = recs.Nodes, recs.Callback
	if rep := check.Check(got); !rep.OK() || rep.Requests != 4 || rep.Signatures != 2 || rep.LedgerUses != 2 {
		t.Fatalf("the workspace's clean records read as:\n%s", rep)
	}
	if got.Ledger[1] != recs.Ledger[1] {
		t.Errorf("ledger use %+v, want %+v", got.Ledger[1], recs.Ledger[1])
	}
	if got.Requests[1].State != check.StateApproved || !got.Requests[1].Approved {
		t.Errorf("request %+v", got.Requests[1])
	}

	// The same workspace with a presignature used again is judged so.
	recs.Ledger = append(recs.Ledger, check.LedgerUse{PresignID: "p1", RequestID: "r4"})
	got, err = check.FromWorkspace(context.Background(), workspaceOf(recs))
	if err != nil {
		t.Fatal(err)
	}
	if rep := check.Check(got); !reported(rep, want{check.I1, "r4", "used 2 times in the cloud co-signers' ledger"}) {
		t.Errorf("reuse not reported:\n%s", rep)
	}
}

func TestFromWorkspaceBadRecords(t *testing.T) {
	tests := []struct {
		name   string
		doctor func(*fakeWorkspace)
	}{
		{"ledger entry without a presignature", func(f *fakeWorkspace) { f.audit[1][0].Detail = "digest=0" }},
		{"ledger entry without a request", func(f *fakeWorkspace) { f.audit[1][0].RequestId = "" }},
		{"listing that does not advance", func(f *fakeWorkspace) { f.stuck = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := workspaceOf(clean(t))
			tt.doctor(f)
			if _, err := check.FromWorkspace(context.Background(), f); !errors.Is(err, check.ErrBadRecords) {
				t.Fatalf("got %v, want ErrBadRecords", err)
			}
		})
	}
}
