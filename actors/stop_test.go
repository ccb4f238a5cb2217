package actors_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
)

// TestStopThenResume stops a node's actors while a Session waits for the
// callback handler: Stop reports the Session it abandoned, the request
// stays claimed by the node (neither failed nor approved), and a new System
// on the same cluster (a restarted node) resumes it from the FSM and signs
// it.
func TestStopThenResume(t *testing.T) {
	e := newEnv(t)
	e.withHandler("retry:\n  - times: 1\n    noteContains: later\n")
	e.start(nil, minuteApart(3))
	id := e.submitTx("1", "later please")
	e.waitTimer(time.Minute) // the Session waits for the handler's RETRY backoff

	c, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.sys.Stop(c); !errors.Is(err, actors.ErrStopTimeout) {
		t.Fatalf("Stop() = %v, want ErrStopTimeout", err)
	}
	if _, err := e.sys.Status(); !errors.Is(err, actors.ErrStopped) {
		t.Errorf("Status after Stop: %v", err)
	}
	if err := e.sys.AddUser(actors.User{ID: "x", Workspace: e.wc, Decider: e.decider(minuteApart(1)), ApprovalRecordID: "a"}); !errors.Is(err, actors.ErrStopped) {
		t.Errorf("AddUser after Stop: %v", err)
	}
	info, ok := e.cl.Request(id)
	if !ok || info.Status != cluster.StatusClaimed || info.Owner != e.cl.NodeID() || len(info.Reserved) != 0 {
		t.Fatalf("after Stop: %+v", info)
	}

	e.start(nil, minuteApart(3)) // the node starts again
	r, info := e.wait(id)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || info.Outcome != cluster.OutcomeSigned {
		t.Fatalf("workspace %v, FSM %v (%s)", r.GetState(), info.Outcome, info.Reason)
	}
	e.verify()
}

// TestReleasedRequestIsClaimedAgain: a Release of this node (as the leader
// proposes for a silent owner) returns its request to unclaimed; the
// Poller claims it again from the cluster's event, and the request is
// signed under the new claim.
func TestReleasedRequestIsClaimedAgain(t *testing.T) {
	e := newEnv(t)
	e.withHandler("retry:\n  - times: 1\n    noteContains: later\n")
	e.start(nil, minuteApart(3))
	id := e.submitTx("1", "later please")
	e.waitTimer(time.Minute)
	if err := e.cl.Release(tctx(t), e.cl.NodeID()); err != nil {
		t.Fatal(err)
	}
	e.eventually(10*time.Second, "claimed again", func() bool {
		info, _ := e.cl.Request(id)
		return info.Status == cluster.StatusClaimed && info.Attempt == 2
	})
	e.clock.Advance(time.Minute)
	r, info := e.wait(id)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || info.Outcome != cluster.OutcomeSigned || info.Attempt != 2 {
		t.Fatalf("workspace %v, FSM %+v", r.GetState(), info)
	}
	e.verify()
}

// TestReleaseAfterReserveIsNoInvariantBreak: a Release of this node that
// lands between its Reserve's commit and the online round (a node stopped
// past the owner timeout and continued) burns the reservation. The Session
// sees ownership lost, an ordinary event: it stops, signing goes on, and
// the request is claimed again and signed under the new claim.
func TestReleaseAfterReserveIsNoInvariantBreak(t *testing.T) {
	e := newEnv(t)
	var once sync.Once
	e.start(func(cfg *actors.Config) {
		cfg.FaultHook = func(_ string, st actors.Stage) {
			if st == actors.StageReserved {
				once.Do(func() {
					if err := e.cl.Release(tctx(t), e.cl.NodeID()); err != nil {
						t.Error(err)
					}
				})
			}
		}
	}, minuteApart(3))
	id := e.submitTx("1", "released after reserve")
	r, info := e.wait(id)
	if why, halted := e.sys.Halted(); halted {
		t.Fatalf("signing halted: %s", why)
	}
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || info.Outcome != cluster.OutcomeSigned || info.Attempt != 2 {
		t.Fatalf("workspace %v, FSM %+v", r.GetState(), info)
	}
	e.verify()
}
