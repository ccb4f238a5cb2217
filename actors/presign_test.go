package actors_test

import (
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
)

// skipUnderRace skips tests that presign: the race detector slows CMP's
// arithmetic about fortyfold (minutes per presignature).
func skipUnderRace(t *testing.T) {
	if raceEnabled {
		t.Skip("presigning takes minutes under the race detector; run without -race")
	}
}

// TestEmptyPoolSignsOnTheSlowPath: with no presignature in the pool and no
// refilling, a transaction presigns on demand (through raft like any
// other presignature), reserves that one and is signed.
func TestEmptyPoolSignsOnTheSlowPath(t *testing.T) {
	skipUnderRace(t)
	e := newEnvWith(t, 0, 1)
	e.start(nil, minuteApart(3))
	id := e.submitTx("1", "slow")
	r, info := e.waitFor(id, 60*time.Second)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || info.Outcome != cluster.OutcomeSigned || len(info.Reserved) != 1 {
		t.Fatalf("workspace %v, FSM %v (%s), reserved %v", r.GetState(), info.Outcome, info.Reason, info.Reserved)
	}
	if r.GetSignatures()[0].GetPresignId() != info.Reserved[0].ID {
		t.Errorf("signed with %s, reserved %s", r.GetSignatures()[0].GetPresignId(), info.Reserved[0].ID)
	}
	e.verify()
}

// TestPoolRefills: the leader's PresignPool fills an empty pool to the
// target depth in the background, a transaction takes from it without
// presigning itself, and the pool refills after the take.
func TestPoolRefills(t *testing.T) {
	skipUnderRace(t)
	e := newEnvWith(t, 0, 1)
	key := shareID(e.userID)
	e.start(func(c *actors.Config) { c.Pool.MinDepth, c.Pool.MaxDepth = 1, 1 }, minuteApart(3))
	e.eventually(60*time.Second, "pool filled", func() bool { return e.cl.PoolDepth(key) == 1 })
	first := e.cl.Available(key)[0]
	id := e.submitTx("1", "warm")
	r, info := e.wait(id)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || len(info.Reserved) != 1 || info.Reserved[0].ID != first {
		t.Fatalf("workspace %v, reserved %v, want the pool's %s", r.GetState(), info.Reserved, first)
	}
	e.eventually(60*time.Second, "pool refilled", func() bool { return e.cl.PoolDepth(key) == 1 })
	st, err := e.sys.Status()
	if err != nil || len(st.Pools) != 1 || st.Pools[0].Target != 1 || !st.Pools[0].Refilling {
		t.Errorf("status %+v, %v", st.Pools, err)
	}
	if got := counter(e.metrics.Presigns.WithLabelValues("ok")); got < 2 {
		t.Errorf("presign jobs ok = %v, want at least 2", got)
	}
	e.verify()
}
