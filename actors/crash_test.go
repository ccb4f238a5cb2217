package actors_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
)

// crasher is a fault hook that panics once at each (request, stage) it is
// armed for, and records the panics.
type crasher struct {
	mu     sync.Mutex
	armed  map[string]bool
	always map[string]actors.Stage
	hits   []string
}

func (c *crasher) arm(request string, st actors.Stage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed[request+"/"+st.String()] = true
}

func (c *crasher) hook(request string, st actors.Stage) {
	c.mu.Lock()
	k := request + "/" + st.String()
	fire := c.armed[k] || c.always[request] == st
	delete(c.armed, k)
	if fire {
		c.hits = append(c.hits, k)
	}
	c.mu.Unlock()
	if fire {
		panic(fmt.Sprintf("injected fault at %s", k))
	}
}

func (c *crasher) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.hits)
}

// TestSessionCrashResumes crashes a transaction's Session after its Reserve
// committed and again after the workspace recorded its signature, and a
// config change's Session after the approval was submitted. Each is
// restarted after the supervisor's backoff and resumes from the recorded
// state: both requests complete exactly once, the crashed incarnation's
// presignature is never used, and no presignature is used twice (checked
// in the FSM and in the workspace's ledger).
func TestSessionCrashResumes(t *testing.T) {
	e := newEnv(t)
	c := &crasher{armed: map[string]bool{}}
	done := e.countCompletions()
	e.start(func(cfg *actors.Config) {
		cfg.FaultHook = c.hook
		cfg.Sessions = actors.SupervisorConfig{MaxRestarts: 3, Window: time.Hour, Backoff: 30 * time.Second, MaxBackoff: time.Minute}
	}, minuteApart(3))

	// The request ids are predictable: the workspace numbers them.
	txID, ccID := "r-000001", "r-000002"
	c.arm(txID, actors.StageReserved)
	c.arm(txID, actors.StageSigned)
	c.arm(ccID, actors.StageSubmitted)
	if id := e.submitTx("1", "crash me"); id != txID {
		t.Fatalf("request id %s, want %s", id, txID)
	}
	e.waitTimer(30 * time.Second) // the restart after the first crash
	e.noCompletion(txID)
	e.clock.Advance(30 * time.Second)
	e.waitTimer(time.Minute) // the second crash's restart waits twice as long
	e.noCompletion(txID)
	e.clock.Advance(time.Minute)
	r, info := e.wait(txID)
	if c.count() != 2 {
		t.Fatalf("crashes %v", c.hits)
	}
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || info.Outcome != cluster.OutcomeSigned {
		t.Fatalf("workspace %v, FSM %v (%s)", r.GetState(), info.Outcome, info.Reason)
	}
	// The first incarnation reserved one presignature and crashed; the
	// second reserved a fresh one and signed with it.
	if len(info.Reserved) != 2 || len(r.GetSignatures()) != 1 || r.GetSignatures()[0].GetPresignId() != info.Reserved[1].ID {
		t.Fatalf("reserved %v, signatures %v", info.Reserved, r.GetSignatures())
	}
	for _, ref := range info.Reserved {
		if p, _ := e.cl.Presignature(ref.KeyID, ref.ID); p.Status != cluster.PresignatureUsed || p.RequestID != txID {
			t.Errorf("presignature %s: %v for %q", ref.ID, p.Status, p.RequestID)
		}
	}

	if r, err := e.admin.SubmitConfigChange(tctx(t), &protocol.WsSubmitConfigChangeRequest{UserId: e.userID, ConfigChange: configChanges()[4]}); err != nil || r.GetId() != ccID {
		t.Fatalf("config change %v, %v", r.GetId(), err)
	}
	e.waitTimer(30 * time.Second)
	e.noCompletion(ccID)
	e.clock.Advance(30 * time.Second)
	r, info = e.wait(ccID)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_APPROVED || info.Outcome != cluster.OutcomeApproved {
		t.Fatalf("config change: workspace %v, FSM %v (%s)", r.GetState(), info.Outcome, info.Reason)
	}

	for _, id := range []string{txID, ccID} {
		if n := done.get(id); n != 1 {
			t.Errorf("request %s completed %d times", id, n)
		}
		r, _ := e.wc.GetRequest(tctx(t), &protocol.WsGetRequestRequest{RequestId: id})
		if r.GetDuplicateCompletions() != 0 {
			t.Errorf("request %s: %d duplicate completions in the workspace", id, r.GetDuplicateCompletions())
		}
	}
	// The workspace's ledger: exactly one presignature used, by one
	// signature; the crashed incarnation's was never used there.
	st, err := e.admin.Stats(tctx(t), &protocol.WsStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetPresignaturesUsed() != 1 || st.GetSignatures() != 1 || st.GetDuplicateCompletions() != 0 {
		t.Errorf("workspace stats: %d presignatures used, %d signatures, %d duplicates", st.GetPresignaturesUsed(), st.GetSignatures(), st.GetDuplicateCompletions())
	}
	e.verify()
	if got := counter(e.metrics.Failures.WithLabelValues("restart")); got != 3 {
		t.Errorf("restarts = %v, want 3", got)
	}
}

// TestSessionGivesUpAfterRepeatedCrashes: a Session that crashes more than
// MaxRestarts times within the window is stopped, and its request fails
// with a reason instead of hanging (I3). Nothing was reserved.
func TestSessionGivesUpAfterRepeatedCrashes(t *testing.T) {
	e := newEnv(t)
	c := &crasher{armed: map[string]bool{}, always: map[string]actors.Stage{"r-000001": actors.StageLoaded}}
	e.start(func(cfg *actors.Config) {
		cfg.FaultHook = c.hook
		cfg.Sessions = actors.SupervisorConfig{MaxRestarts: 2, Window: time.Hour}
	}, minuteApart(3))
	id := e.submitTx("1", "doomed")
	r, info := e.wait(id)
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_FAILED || info.Outcome != cluster.OutcomeFailed {
		t.Fatalf("workspace %v, FSM %v", r.GetState(), info.Outcome)
	}
	if c.count() != 3 || info.Reason != "session crashed repeatedly" || len(info.Reserved) != 0 {
		t.Errorf("crashes %d, reason %q, reserved %v", c.count(), info.Reason, info.Reserved)
	}
	if got := counter(e.metrics.Failures.WithLabelValues("stop")); got != 1 {
		t.Errorf("stops = %v, want 1", got)
	}
}

// noCompletion checks that a request has not completed.
func (e *env) noCompletion(request string) {
	e.t.Helper()
	if info, ok := e.cl.Request(request); ok && info.Status == cluster.StatusCompleted {
		e.t.Fatalf("request %s completed while its Session waited to restart", request)
	}
}
