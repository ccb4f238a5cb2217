package actors_test

import (
	"context"
	"fmt"
	"sync"
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
	// At its target the pool is not refilling; this node is its refiller.
	e.eventually(10*time.Second, "refill jobs finished", func() bool {
		st, err := e.sys.Status()
		return err == nil && len(st.Pools) == 1 && st.Pools[0].InFlight == 0
	})
	st, err := e.sys.Status()
	if err != nil || len(st.Pools) != 1 || st.Pools[0].Target != 1 || st.Pools[0].Refilling || !st.Pools[0].Refiller {
		t.Errorf("status %+v, %v; want target 1, refiller, not refilling", st.Pools, err)
	}
	if got := counter(e.metrics.Presigns.WithLabelValues("ok")); got < 2 {
		t.Errorf("presign jobs ok = %v, want at least 2", got)
	}
	e.verify()
}

// TestPoolRefillsNeverDelaySessions: while a refill job holds the only
// presign worker (a gate in Config.RefillHook keeps it there, doing no
// MPC work), the warm pool's presignatures are taken at once and the one
// transaction more than the pool holds presigns on the spot: every
// transaction completes while the refill job still waits at the gate.
func TestPoolRefillsNeverDelaySessions(t *testing.T) {
	skipUnderRace(t)
	e := newEnvWith(t, -1, 1) // the fixture's presignatures
	key := shareID(e.userID)
	warm := len(e.presigs)
	entered := make(chan string, 1)
	gate := make(chan struct{})
	var open sync.Once
	e.start(func(c *actors.Config) {
		c.PresignWorkers = 1
		c.Pool.MinDepth, c.Pool.MaxDepth = warm+1, warm+1
		c.RefillHook = func(ctx context.Context, k string) {
			select {
			case entered <- k:
			default:
			}
			select {
			case <-gate:
			case <-ctx.Done():
			}
		}
	}, minuteApart(3))
	t.Cleanup(func() { open.Do(func() { close(gate) }) }) // runs before the System stops
	select {
	case k := <-entered:
		if k != key {
			t.Fatalf("refill of key %q, want %q", k, key)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no refill job started")
	}
	if d := e.cl.PoolDepth(key); d != warm {
		t.Fatalf("pool depth %d before the transactions, want %d", d, warm)
	}

	ids := make([]string, warm+1)
	for i := range ids {
		ids[i] = e.submitTx("1", fmt.Sprintf("burst %d", i))
	}
	fromPool := map[string]bool{}
	for _, p := range e.presigs {
		fromPool[p] = true
	}
	took := 0
	for _, id := range ids {
		r, info := e.waitFor(id, 45*time.Second)
		if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || info.Outcome != cluster.OutcomeSigned || len(info.Reserved) != 1 {
			t.Fatalf("%s: workspace %v, FSM %v (%s), reserved %v", id, r.GetState(), info.Outcome, info.Reason, info.Reserved)
		}
		if fromPool[info.Reserved[0].ID] {
			took++
		}
	}
	if took != warm {
		t.Errorf("%d transactions signed with the warm pool's presignatures, want %d (the rest on the slow path)", took, warm)
	}
	// Every transaction finished with the refill job still at the gate.
	if got := counter(e.metrics.Presigns.WithLabelValues("ok")) + counter(e.metrics.Presigns.WithLabelValues("error")); got != 0 {
		t.Errorf("%v refill jobs finished before the gate opened", got)
	}
	open.Do(func() { close(gate) })
	e.verify()
}
