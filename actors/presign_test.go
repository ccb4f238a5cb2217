package actors_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
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

// TestEmptyPoolRace: two Sessions race for the pool's one presignature.
// Exactly one reserves it; the other, finding the pool empty, presigns on
// the spot and adds and reserves its own in one commit. Both are signed,
// each with its own presignature, used once in the FSM and the workspace.
func TestEmptyPoolRace(t *testing.T) {
	skipUnderRace(t)
	e := newEnvWith(t, 1, 1)
	e.start(nil, minuteApart(3))
	a, b := e.submitTx("1", "race a"), e.submitTx("1", "race b")
	used := map[string]string{}
	for _, id := range []string{a, b} {
		r, info := e.waitFor(id, 60*time.Second)
		if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || info.Outcome != cluster.OutcomeSigned || len(info.Reserved) != 1 {
			t.Fatalf("%s: workspace %v, FSM %v (%s), reserved %v", id, r.GetState(), info.Outcome, info.Reason, info.Reserved)
		}
		p := info.Reserved[0].ID
		if other, dup := used[p]; dup {
			t.Fatalf("presignature %s reserved by %s and %s", p, other, id)
		}
		used[p] = id
		if got := r.GetSignatures()[0].GetPresignId(); got != p {
			t.Errorf("%s: signed with %s, reserved %s", id, got, p)
		}
	}
	if _, ok := used[e.presigs[0]]; !ok {
		t.Errorf("the pool's presignature %s was not used: %v", e.presigs[0], used)
	}
	st, err := e.admin.Stats(tctx(t), &protocol.WsStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetPresignaturesUsed() != 2 || st.GetSignatures() != 2 {
		t.Errorf("workspace: %d presignatures used, %d signatures; want 2 and 2", st.GetPresignaturesUsed(), st.GetSignatures())
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
	// At its target the pool is not refilling.
	e.eventually(10*time.Second, "refill jobs finished", func() bool {
		st, err := e.sys.Status()
		return err == nil && len(st.Pools) == 1 && st.Pools[0].InFlight == 0
	})
	st, err := e.sys.Status()
	if err != nil || len(st.Pools) != 1 || st.Pools[0].Target != 1 || st.Pools[0].Refilling {
		t.Errorf("status %+v, %v; want target 1, not refilling", st.Pools, err)
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

// deadRelay is a workspace whose relay fails at once, as when the
// workspace is down.
type deadRelay struct {
	actors.Workspace
	calls atomic.Int64
}

func (d *deadRelay) Relay(context.Context, *protocol.WsMpcStart, func() (mpc.Machine, error)) (*protocol.WsMpcResult, error) {
	d.calls.Add(1)
	return nil, errors.New("workspace unavailable")
}

// TestPoolBacksOffWhenRefillsFail: with the workspace down, every refill
// fails at once. The pool does not retry in a busy loop: after each failure
// it waits a backoff on the clock (RetryDelay, doubling), trying once per
// backoff, and logs one warning per failure.
func TestPoolBacksOffWhenRefillsFail(t *testing.T) {
	e := newEnvWith(t, 0, 1)
	dead := &deadRelay{}
	e.wrap = func(ws actors.Workspace) actors.Workspace { dead.Workspace = ws; return dead }
	e.start(func(c *actors.Config) { c.Pool.MinDepth, c.Pool.MaxDepth = 1, 1 }, minuteApart(3))
	wait := func(d time.Duration) {
		t.Helper()
		if err := e.clock.WaitForTimerAt(tctx(t), d); err != nil {
			t.Fatal(err)
		}
	}
	for n, d := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second} {
		wait(d) // the backoff after failure n+1
		if got := dead.calls.Load(); got != int64(n+1) {
			t.Fatalf("%d refill attempts before backoff %v passed, want %d", got, d, n+1)
		}
		e.clock.Advance(d)
	}
	wait(4 * time.Second)
	if got := counter(e.metrics.Presigns.WithLabelValues("error")); got != 4 {
		t.Errorf("failed presigns = %v, want 4", got)
	}
}

// racingCluster loses the first Reserve to another node: the local replica
// showed a presignature available, but another node's Reserve took the
// last one first, so the FSM answers ErrPoolEmpty.
type racingCluster struct {
	actors.Cluster
	lost atomic.Bool
}

func (c *racingCluster) ReserveNext(ctx context.Context, request, key string) (cluster.PresignatureRef, error) {
	if c.lost.CompareAndSwap(false, true) {
		return cluster.PresignatureRef{}, cluster.ErrPoolEmpty
	}
	return c.Cluster.ReserveNext(ctx, request, key)
}

// TestReserveLostToAnotherNode: a Reserve refused because the pool turned
// out empty is not a reservation: the Session reserves again and signs
// with the presignature it did get.
func TestReserveLostToAnotherNode(t *testing.T) {
	e := newEnvWith(t, 2, 1)
	racing := &racingCluster{Cluster: e.cl}
	e.start(func(c *actors.Config) { c.Cluster = racing }, minuteApart(3))
	id := e.submitTx("1", "lost race")
	r, info := e.wait(id)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || info.Outcome != cluster.OutcomeSigned || len(info.Reserved) != 1 {
		t.Fatalf("workspace %v, FSM %v (%s), reserved %v", r.GetState(), info.Outcome, info.Reason, info.Reserved)
	}
	if !racing.lost.Load() {
		t.Fatal("the Reserve was never lost")
	}
	if got := counter(e.metrics.Failures.WithLabelValues("halt")); got != 0 {
		t.Errorf("%v invariant breaks", got)
	}
	if why, halted := e.sys.Halted(); halted {
		t.Errorf("the System halted: %s", why)
	}
	if got := r.GetSignatures()[0].GetPresignId(); got != info.Reserved[0].ID {
		t.Errorf("signed with %s, reserved %s", got, info.Reserved[0].ID)
	}
}

// brokenCluster breaks I1 as a faulty FSM would: its Reserve commits
// nothing yet reports a presignature reserved.
type brokenCluster struct{ actors.Cluster }

func (c brokenCluster) ReserveNext(ctx context.Context, request, key string) (cluster.PresignatureRef, error) {
	return cluster.PresignatureRef{KeyID: key, ID: "never-reserved"}, nil
}

// TestInvariantBreakHaltsSigning: a Session that finds an invariant broken
// (a "committed" reservation the FSM does not show) halts the node's
// signing: it reports why once, signs nothing, leaves the request claimed,
// claims nothing more, and the actor tree is not restarted in a loop.
func TestInvariantBreakHaltsSigning(t *testing.T) {
	e := newEnvWith(t, 1, 1)
	halts := make(chan string, 4)
	e.start(func(c *actors.Config) {
		c.Cluster = brokenCluster{Cluster: e.cl}
		c.OnHalt = func(reason string) { halts <- reason }
	}, minuteApart(3))
	id := e.submitTx("1", "broken FSM")
	var reason string
	select {
	case reason = <-halts:
	case <-time.After(30 * time.Second):
		t.Fatal("the System did not halt")
	}
	if why, ok := e.sys.Halted(); !ok || why != reason || !strings.Contains(reason, "never-reserved") {
		t.Fatalf("Halted() = %q, %v; OnHalt said %q", why, ok, reason)
	}
	later := e.submitTx("1", "after the halt")
	// The halted node's request stays claimed and unsigned, and the next
	// is never claimed; an operator restarts the node.
	e.eventually(10*time.Second, "the halted Session ended", func() bool {
		st, err := e.sys.Status()
		return err == nil && len(st.Sessions) == 0
	})
	if info, ok := e.cl.Request(id); !ok || info.Status != cluster.StatusClaimed {
		t.Errorf("halted request: %+v, %v; want it left claimed", info, ok)
	}
	if _, ok := e.cl.Request(later); ok {
		t.Errorf("request %s was claimed after the halt", later)
	}
	r, err := e.wc.GetRequest(tctx(t), &protocol.WsGetRequestRequest{RequestId: id})
	if err != nil || len(r.GetSignatures()) != 0 {
		t.Errorf("halted request signed: %v, %v", r.GetSignatures(), err)
	}
	if got := counter(e.metrics.Failures.WithLabelValues("restart")); got != 0 {
		t.Errorf("%v restarts after the halt", got)
	}
	select {
	case again := <-halts:
		t.Errorf("OnHalt called again: %q", again)
	default:
	}
}
