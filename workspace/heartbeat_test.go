package workspace_test

import (
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
)

// TestPollHeartbeat: a poller that asks for heartbeats gets its cursor
// alone after every quiet interval; a poller that asks for none gets none.
func TestPollHeartbeat(t *testing.T) {
	clk := clock.NewFake(time.Now())
	e := serve(t, fixtureDir(t), clk)
	c := ctx(t)
	n := e.fixtureSigner()
	r := e.submitTx(n.creds.UserID, "tx-1")

	const beat = 1700 * time.Millisecond // no other timer of the workspace's is due then
	stream, err := n.c.Poll(c, &protocol.WsPollRequest{HeartbeatMs: uint32(beat / time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	recv := func(what string) *protocol.WsPollEvent {
		t.Helper()
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return ev
	}
	if ev := recv("backlog"); ev.GetRequest().GetId() != r.Id {
		t.Fatalf("first event = %v, want request %s", ev, r.Id)
	}
	if ev := recv("caught up"); !ev.CaughtUp {
		t.Fatalf("second event = %v, want caught up", ev)
	}
	for i := range 2 {
		if err := clk.WaitForTimerAt(c, beat); err != nil {
			t.Fatal(err)
		}
		clk.Advance(beat)
		if ev := recv("heartbeat"); ev.Request != nil || ev.CaughtUp || ev.Cursor != r.Seq {
			t.Fatalf("heartbeat %d = %v, want cursor %d alone", i, ev, r.Seq)
		}
	}

	quiet, err := n.c.Poll(c, &protocol.WsPollRequest{Cursor: r.Seq})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := quiet.Recv(); err != nil || !ev.CaughtUp {
		t.Fatalf("first event without heartbeats = %v, %v", ev, err)
	}
	if err := clk.WaitForTimerAt(c, beat); err != nil { // the first stream's next heartbeat
		t.Fatal(err)
	}
	clk.Advance(10 * beat)
	recv("heartbeat after the long advance")
	got := make(chan *protocol.WsPollEvent, 1)
	go func() {
		if ev, err := quiet.Recv(); err == nil {
			got <- ev
		}
	}()
	r2 := e.submitTx(n.creds.UserID, "tx-2")
	select {
	case ev := <-got:
		if ev.GetRequest().GetId() != r2.Id {
			t.Fatalf("stream without heartbeats: next event = %v, want request %s and nothing before it", ev, r2.Id)
		}
	case <-c.Done():
		t.Fatal("stream without heartbeats: no event for a new request")
	}
}
