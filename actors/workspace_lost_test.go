package actors_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
)

// cutWorkspace cuts the Poller off the workspace on demand: the open
// stream goes silent (heartbeats stop, as on a dead link) and new streams
// are refused.
type cutWorkspace struct {
	actors.Workspace
	cut atomic.Bool
}

func (w *cutWorkspace) Poll(ctx context.Context, in *protocol.WsPollRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[protocol.WsPollEvent], error) {
	if w.cut.Load() {
		return nil, status.Error(codes.Unavailable, "connection refused")
	}
	s, err := w.Workspace.Poll(ctx, in, opts...)
	return &silentStream{ServerStreamingClient: s, w: w, ctx: ctx}, err
}

type silentStream struct {
	grpc.ServerStreamingClient[protocol.WsPollEvent]
	w   *cutWorkspace
	ctx context.Context
}

func (s *silentStream) Recv() (*protocol.WsPollEvent, error) {
	ev, err := s.ServerStreamingClient.Recv()
	if s.w.cut.Load() {
		<-s.ctx.Done()
		return nil, s.ctx.Err()
	}
	return ev, err
}

// TestWorkspaceLostHandsBack: a node whose poll stream goes silent (no
// event, not even a heartbeat) counts it broken after three heartbeat
// intervals; once it has been broken for WorkspaceTimeout, the node hands
// back the request it owns, so that a node that reaches the workspace can
// finish it. It claims nothing while cut off, and once the stream works
// again it claims the request back and signs it.
func TestWorkspaceLostHandsBack(t *testing.T) {
	e := newEnv(t)
	ws := &cutWorkspace{}
	e.wrap = func(inner actors.Workspace) actors.Workspace { ws.Workspace = inner; return ws }
	loaded, hold := make(chan string, 1), make(chan struct{})
	var held atomic.Bool
	e.start(func(c *actors.Config) {
		c.PollHeartbeat, c.WorkspaceTimeout = time.Second, 3*time.Second
		c.FaultHook = func(request string, st actors.Stage) {
			if st == actors.StageLoaded && held.CompareAndSwap(false, true) {
				loaded <- request
				<-hold
			}
		}
	}, minuteApart(3))
	id := e.submitTx("1", "cut off")
	select {
	case <-loaded:
	case <-tctx(t).Done():
		t.Fatal("the request never reached its Session")
	}
	ws.cut.Store(true)
	// Fake time: the watchdog (3 s), then the WorkspaceTimeout (3 s), and
	// the hand-back's commit.
	if !e.advance(200, func() bool { return e.request(id).Status == cluster.StatusUnclaimed }) {
		t.Fatalf("not handed back: %+v", e.request(id))
	}
	if r := e.request(id); r.LastOwner != e.cl.NodeID() || r.Attempt != 1 {
		t.Fatalf("handed back: %+v", r)
	}
	close(hold) // the old Session finds it no longer owns the request

	// Cut off, it claims nothing: a minute of fake time.
	if e.advance(120, func() bool { return e.request(id).Status != cluster.StatusUnclaimed }) {
		t.Fatalf("claimed while cut off from the workspace: %+v", e.request(id))
	}

	ws.cut.Store(false)
	if !e.advance(200, func() bool { return e.request(id).Status == cluster.StatusCompleted }) {
		t.Fatalf("not signed after the workspace came back: %+v", e.request(id))
	}
	r, got := e.wait(id)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || got.Outcome != cluster.OutcomeSigned || got.Attempt != 2 {
		t.Fatalf("workspace %v, FSM %+v", r.GetState(), got)
	}
}

// unreachableCalls fails the Session's reads and failure reports as a
// connection that is down does, while the poll stream goes on working.
type unreachableCalls struct {
	actors.Workspace
	down atomic.Bool
}

func (w *unreachableCalls) GetRequest(ctx context.Context, in *protocol.WsGetRequestRequest, opts ...grpc.CallOption) (*protocol.WsRequest, error) {
	if w.down.Load() {
		return nil, status.Error(codes.Unavailable, "connection refused")
	}
	return w.Workspace.GetRequest(ctx, in, opts...)
}

func (w *unreachableCalls) FailRequest(ctx context.Context, in *protocol.WsFailRequest, opts ...grpc.CallOption) (*protocol.WsRequest, error) {
	if w.down.Load() {
		return nil, status.Error(codes.Unavailable, "connection refused")
	}
	return w.Workspace.FailRequest(ctx, in, opts...)
}

// TestUnreachableStepNeverFails: a Session whose workspace calls fail as
// unreachable for its whole step budget does not fail the request (it
// could not tell the workspace, and would record an outcome the workspace
// never heard of): the request stays this node's, and once the workspace
// answers again a new Session signs it.
func TestUnreachableStepNeverFails(t *testing.T) {
	e := newEnv(t)
	ws := &unreachableCalls{}
	ws.down.Store(true)
	e.wrap = func(inner actors.Workspace) actors.Workspace { ws.Workspace = inner; return ws }
	e.start(nil, minuteApart(3))
	id := e.submitTx("1", "unreachable")
	completed := func() bool { return e.request(id).Status == cluster.StatusCompleted }
	// Two minutes of fake time: the step budget several times over.
	if e.advance(240, completed) {
		t.Fatalf("the request was completed while the workspace was unreachable: %+v", e.request(id))
	}
	if r := e.request(id); r.Status != cluster.StatusClaimed || r.Owner != e.cl.NodeID() {
		t.Fatalf("while the workspace was unreachable: %+v", r)
	}
	ws.down.Store(false)
	if !e.advance(400, completed) {
		t.Fatalf("not signed once the workspace answered: %+v", e.request(id))
	}
	r, got := e.wait(id)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || got.Outcome != cluster.OutcomeSigned {
		t.Fatalf("workspace %v, FSM %+v", r.GetState(), got)
	}
}

// flakyReject fails the first reports of a rejection as unreachable.
type flakyReject struct {
	actors.Workspace
	failures atomic.Int32
}

func (w *flakyReject) RejectRequest(ctx context.Context, in *protocol.WsRejectRequest, opts ...grpc.CallOption) (*protocol.WsRequest, error) {
	if w.failures.Add(-1) >= 0 {
		return nil, status.Error(codes.Unavailable, "connection refused")
	}
	return w.Workspace.RejectRequest(ctx, in, opts...)
}

// TestRejectionStandsAcrossReloads: a REJECT whose report fails is
// reported again after the reload, not asked again (a second answer could
// differ, and a request the handler rejected must never be signed).
func TestRejectionStandsAcrossReloads(t *testing.T) {
	e := newEnv(t)
	e.withHandler("transactions:\n  maxAmount:\n    ETH: \"10\"\n")
	ws := &flakyReject{}
	ws.failures.Store(2)
	e.wrap = func(inner actors.Workspace) actors.Workspace { ws.Workspace = inner; return ws }
	e.start(nil, minuteApart(3))
	id := e.submitTx("50", "too much")
	if !e.advance(400, func() bool { return e.request(id).Status == cluster.StatusCompleted }) {
		t.Fatalf("not rejected: %+v", e.request(id))
	}
	r, got := e.wait(id)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_REJECTED || got.Outcome != cluster.OutcomeRejected {
		t.Fatalf("workspace %v, FSM %+v", r.GetState(), got)
	}
	if n := counter(e.metrics.CallbackOutcomes.WithLabelValues("REJECT")); n != 1 {
		t.Errorf("the handler was asked %v times, want once", n)
	}
}
