package actors_test

import (
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
)

// TestPollerReconnects: when the workspace restarts, the poll stream
// breaks; the Poller reconnects after its backoff (on the clock) from its
// cursor and picks up the requests submitted since.
func TestPollerReconnects(t *testing.T) {
	e := newEnv(t)
	e.start(nil, minuteApart(3))
	first := e.submitTx("1", "before")
	if r, _ := e.wait(first); r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED {
		t.Fatalf("first request %v", r.GetState())
	}
	timers := e.clock.Pending()
	e.restartWorkspace()
	e.eventually(10*time.Second, "the poller to schedule its reconnect", func() bool { return e.clock.Pending() > timers })
	second := e.submitTx("1", "after")
	e.noCompletion(second)
	e.clock.Advance(100 * time.Millisecond) // PollBackoffMin
	r, info := e.wait(second)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || info.Outcome != cluster.OutcomeSigned {
		t.Fatalf("second request: workspace %v, FSM %v (%s)", r.GetState(), info.Outcome, info.Reason)
	}
	e.verify()
}
