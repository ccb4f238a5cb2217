package actors_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
)

// garbling is a fault injector around the real workspace connection: it
// corrupts what GetRequest returns for chosen requests, and starts every
// poll stream with an event naming a malformed request id. The workspace
// server validates submissions, so this is the only way such records reach
// the actors.
type garbling struct {
	actors.Workspace
	mu     sync.Mutex
	garble map[string]func(*protocol.WsRequest)
}

func (g *garbling) GetRequest(ctx context.Context, in *protocol.WsGetRequestRequest, opts ...grpc.CallOption) (*protocol.WsRequest, error) {
	r, err := g.Workspace.GetRequest(ctx, in, opts...)
	g.mu.Lock()
	f := g.garble[in.GetRequestId()]
	g.mu.Unlock()
	if err != nil || f == nil {
		return r, err
	}
	r = proto.Clone(r).(*protocol.WsRequest)
	f(r)
	return r, nil
}

func (g *garbling) Poll(ctx context.Context, in *protocol.WsPollRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[protocol.WsPollEvent], error) {
	s, err := g.Workspace.Poll(ctx, in, opts...)
	if err != nil {
		return nil, err
	}
	return &garbledStream{ServerStreamingClient: s}, nil
}

// garbledStream sends one event with a malformed request id first.
type garbledStream struct {
	grpc.ServerStreamingClient[protocol.WsPollEvent]
	sent bool
}

func (s *garbledStream) Recv() (*protocol.WsPollEvent, error) {
	if !s.sent {
		s.sent = true
		return &protocol.WsPollEvent{Request: &protocol.WsRequest{Id: "../not an id", State: protocol.WsRequestState_WS_REQUEST_STATE_PENDING,
			Kind: protocol.WsRequestKind_WS_REQUEST_KIND_TRANSACTION}}, nil
	}
	return s.ServerStreamingClient.Recv()
}

// TestGarbledWorkspaceRequestsFail: requests whose workspace record the
// actors receive garbled (a digest that is not 32 bytes, a hardened or
// over-long derivation path, no digest, an unknown kind, another request's
// record, a config change of an unknown type, without its payload or with
// another type's) each fail with a clear reason in the workspace and the
// FSM, although the callback approves everything: nothing is signed or
// approved, no presignature is spent, and the node goes on to sign and
// approve good requests.
func TestGarbledWorkspaceRequestsFail(t *testing.T) {
	e := newEnv(t)
	g := &garbling{garble: map[string]func(*protocol.WsRequest){}}
	e.wrap = func(ws actors.Workspace) actors.Workspace { g.Workspace = ws; return g }

	exchange := configChanges()[0]
	tests := []struct {
		name   string
		cc     bool
		garble func(*protocol.WsRequest)
		want   string
	}{
		{"short digest", false, func(r *protocol.WsRequest) {
			d := r.GetTransaction().GetDigests()[0]
			d.Digest = d.Digest[:31]
		}, "digest 0 is 31 bytes, want 32"},
		{"long digest", false, func(r *protocol.WsRequest) {
			d := r.GetTransaction().GetDigests()[0]
			d.Digest = append(d.Digest, 0)
		}, "digest 0 is 33 bytes, want 32"},
		{"hardened path", false, func(r *protocol.WsRequest) {
			r.GetTransaction().GetDigests()[0].DerivationPath[1] |= 1 << 31
		}, "derivation path element 1 is hardened"},
		{"over-long path", false, func(r *protocol.WsRequest) {
			r.GetTransaction().GetDigests()[0].DerivationPath = make([]uint32, 11)
		}, "derivation path of 11 elements"},
		{"no digest", false, func(r *protocol.WsRequest) { r.GetTransaction().Digests = nil }, "has 0 digests"},
		{"unknown kind", false, func(r *protocol.WsRequest) { r.Kind = 7 }, "unknown kind 7"},
		{"another request", false, func(r *protocol.WsRequest) { r.Id = "other" }, "record of another request"},
		{"another user", true, func(r *protocol.WsRequest) { r.UserId = "mallory" }, "another API user"},
		{"unknown config-change type", true, func(r *protocol.WsRequest) { r.GetConfigChange().Type = 99 }, "type 99 is unknown"},
		{"config change without payload", true, func(r *protocol.WsRequest) { r.GetConfigChange().Payload = nil }, "payload does not match type EXCHANGE"},
		{"config change with another type's payload", true, func(r *protocol.WsRequest) {
			r.GetConfigChange().Payload = &protocol.WsConfigChange_OneTimeAddress{OneTimeAddress: &protocol.WsOneTimeAddress{Enabled: true}}
		}, "payload does not match type EXCHANGE"},
		{"config change without its body", true, func(r *protocol.WsRequest) { r.Body = nil }, "has no config change"},
	}
	ids := make([]string, len(tests))
	for i, tt := range tests {
		if tt.cc {
			r, err := e.admin.SubmitConfigChange(tctx(t), &protocol.WsSubmitConfigChangeRequest{UserId: e.userID, ConfigChange: exchange})
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = r.GetId()
		} else {
			ids[i] = e.submitTx("1", tt.name)
		}
		g.garble[ids[i]] = tt.garble
	}
	// No handler: the callback approves everything, so only the check
	// stands between a garbled record and a signature.
	e.start(nil, callback.DefaultBackoff())

	for i, tt := range tests {
		r, info := e.wait(ids[i])
		if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_FAILED || info.Outcome != cluster.OutcomeFailed {
			t.Errorf("%s: workspace %v, FSM %v (%s)", tt.name, r.GetState(), info.Outcome, info.Reason)
			continue
		}
		if !strings.Contains(info.Reason, actors.ErrMalformedRequest.Error()) || !strings.Contains(info.Reason, tt.want) || r.GetReason() != info.Reason {
			t.Errorf("%s: FSM reason %q, workspace reason %q, want %q", tt.name, info.Reason, r.GetReason(), tt.want)
		}
		if len(info.Reserved) != 0 || len(r.GetSignatures()) != 0 || len(r.GetApprovalSignature()) != 0 {
			t.Errorf("%s: reserved %v, signatures %v, approval %x", tt.name, info.Reserved, r.GetSignatures(), r.GetApprovalSignature())
		}
	}
	if d := e.cl.PoolDepth(shareID(e.userID)); d != len(e.presigs) {
		t.Errorf("pool depth %d after the garbled requests, want %d", d, len(e.presigs))
	}

	// The node is still serving: good requests sign and approve.
	txID := e.submitTx("1", "good")
	cc, err := e.admin.SubmitConfigChange(tctx(t), &protocol.WsSubmitConfigChangeRequest{UserId: e.userID, ConfigChange: exchange})
	if err != nil {
		t.Fatal(err)
	}
	if r, info := e.wait(txID); r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || info.Outcome != cluster.OutcomeSigned {
		t.Fatalf("good transaction: workspace %v, FSM %v (%s)", r.GetState(), info.Outcome, info.Reason)
	}
	if r, info := e.wait(cc.GetId()); r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_APPROVED || info.Outcome != cluster.OutcomeApproved {
		t.Fatalf("good config change: workspace %v, FSM %v (%s)", r.GetState(), info.Outcome, info.Reason)
	}
	if v := e.verify(); v.GetSignaturesChecked() != 1 || v.GetApprovalsChecked() != 1 {
		t.Errorf("verify checked %d signatures and %d approvals, want 1 and 1", v.GetSignaturesChecked(), v.GetApprovalsChecked())
	}
	for outcome, want := range map[string]float64{"signed": 1, "approved": 1, "failed": float64(len(tests)), "rejected": 0} {
		if got := counter(e.metrics.Requests.WithLabelValues(outcome)); got != want {
			t.Errorf("requests %s = %v, want %v", outcome, got, want)
		}
	}
}
