package actors_test

import (
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
)

// TestApprovalCoversContent: the workspace changes a request's content
// under the same id after the handler approved it (a digest, a payload
// amount, a config change's payload), and the Session reloads it (a crash
// right after the APPROVE). The Session fails the request with
// ErrContentChanged: it reserves nothing, signs nothing and approves
// nothing that the handler did not see.
func TestApprovalCoversContent(t *testing.T) {
	e := newEnv(t)
	g := &garbling{garble: map[string]func(*protocol.WsRequest){}}
	e.wrap = func(ws actors.Workspace) actors.Workspace { g.Workspace = ws; return g }
	c := &crasher{armed: map[string]bool{}}

	tests := []struct {
		name   string
		cc     bool
		change func(*protocol.WsRequest)
	}{
		{"digest", false, func(r *protocol.WsRequest) { r.GetTransaction().GetDigests()[0].Digest[0] ^= 1 }},
		{"derivation path", false, func(r *protocol.WsRequest) { r.GetTransaction().GetDigests()[0].DerivationPath[4]++ }},
		{"destination amount", false, func(r *protocol.WsRequest) { r.GetTransaction().GetDestinations()[0].Amount = "1000" }},
		{"config change payload", true, func(r *protocol.WsRequest) { r.GetConfigChange().GetExchange().Name = "mallory" }},
	}
	ids := make([]string, len(tests))
	for i, tt := range tests {
		if tt.cc {
			r, err := e.admin.SubmitConfigChange(tctx(t), &protocol.WsSubmitConfigChangeRequest{UserId: e.userID, ConfigChange: configChanges()[0]})
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = r.GetId()
		} else {
			ids[i] = e.submitTx("1", tt.name)
		}
		c.arm(ids[i], actors.StageApproved)
	}
	// The content changes between the APPROVE and the reload.
	hook := func(request string, st actors.Stage) {
		if st == actors.StageApproved {
			for i, id := range ids {
				if id == request {
					g.mu.Lock()
					g.garble[id] = tests[i].change
					g.mu.Unlock()
				}
			}
		}
		c.hook(request, st)
	}
	e.start(func(cfg *actors.Config) {
		cfg.FaultHook = hook
		cfg.Sessions = actors.SupervisorConfig{MaxRestarts: 3, Window: time.Hour}
	}, callback.DefaultBackoff())

	for i, tt := range tests {
		r, info := e.wait(ids[i])
		if info.Outcome != cluster.OutcomeFailed || !strings.Contains(info.Reason, actors.ErrContentChanged.Error()) {
			t.Errorf("%s: FSM %v (%s), want failed with %q", tt.name, info.Outcome, info.Reason, actors.ErrContentChanged)
		}
		if len(info.Reserved) != 0 || len(r.GetSignatures()) != 0 || len(r.GetApprovalSignature()) != 0 {
			t.Errorf("%s: reserved %v, signatures %v, approval %x", tt.name, info.Reserved, r.GetSignatures(), r.GetApprovalSignature())
		}
	}
	if c.count() != len(tests) {
		t.Errorf("crashes %v", c.hits)
	}
}
