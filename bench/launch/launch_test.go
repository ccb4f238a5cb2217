package launch

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/bench/check"
	"github.com/coterie-mpc/coterie/bench/launch/launchtest"
	"github.com/coterie-mpc/coterie/protocol"
)

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Binary, good.Dir = "coterie", "dir"
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // each must appear in the error; none: valid
	}{
		{"default", func(*Config) {}, nil},
		{"2-of-3", func(c *Config) { c.Cosigners, c.Quorum = 2, 2 }, nil},
		{"3-of-3", func(c *Config) { c.Cosigners, c.Quorum = 2, 3 }, nil},
		{"every problem at once", func(c *Config) {
			c.Binary, c.Dir, c.Nodes, c.Cosigners, c.Quorum = "", "", 0, 3, 1
			c.PresignTarget, c.OwnerTimeout, c.CallTimeout, c.Clock = 0, 500*time.Millisecond, 0, nil
		}, []string{"Binary", "Dir", "Nodes", "Cosigners", "Quorum", "PresignTarget", "OwnerTimeout", "CallTimeout", "Clock"}},
		{"quorum above the parties", func(c *Config) { c.Quorum = 3 }, []string{"Quorum is 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.change(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// submit queues one transaction for user.
func submit(t *testing.T, c *Cluster, user, amount string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	r, err := c.Workspace.SubmitTransaction(ctx, &protocol.WsSubmitTransactionRequest{UserId: user, Transaction: &protocol.WsTransaction{
		Asset: "ETH", Amount: amount, Source: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
		Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "0xc1"}, Amount: amount}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetId()
}

// mustSign submits a transaction and fails the test unless it is signed.
func mustSign(t *testing.T, c *Cluster, user, amount string) {
	t.Helper()
	id := submit(t, c, user, amount)
	r, err := c.WaitRequest(t.Context(), user, id)
	if err != nil {
		t.Fatal(err)
	}
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED {
		t.Fatalf("%s: %v (%s)", id, r.GetState(), r.GetReason())
	}
}

// TestCluster starts three nodes, a workspace with one cloud co-signer and
// the reference callback handler, pairs a user, waits for a warm pool and
// signs; signs again with latency on the workspace link and on a node's
// link; kills a node with SIGKILL, restarts it and signs once more; and
// has a transaction over the policy's limit rejected. The handler's log
// holds every decision, and every process's CPU time reads.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	cfg := DefaultConfig()
	cfg.Binary, cfg.Dir = launchtest.Binary(t), t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	cfg.CallbackPolicy = "transactions:\n  maxAmount:\n    ETH: \"10\"\n"
	c, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes {
				t.Logf("%s log:\n%s", n.ID, Tail(n.Log, 30))
			}
		}
	})
	users, err := c.Pair(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitWarm(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustSign(t, c, users[0], "1")

	// The nodes reach the workspace and each other through the proxies.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	listed, err := c.Nodes[0].Admin.Users(ctx)
	if err != nil || len(listed) != 1 || listed[0].WorkspaceAddress != c.WorkspaceAddr {
		t.Fatalf("users %+v (%v), want the workspace at %s", listed, err, c.WorkspaceAddr)
	}
	for _, n := range c.Nodes {
		if to := n.Config.Workspace.Routes[c.WorkspaceAddr]; to != n.WorkspaceLink.Addr() {
			t.Errorf("%s routes the workspace to %q, not to its proxy %s", n.ID, to, n.WorkspaceLink.Addr())
		}
	}
	view, err := c.Nodes[0].Admin.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range view.Members {
		i := slices.IndexFunc(c.Nodes, func(n *Node) bool { return n.ID == m.ID })
		if i < 0 || m.Address != c.Nodes[i].Link.Addr() {
			t.Errorf("member %s at %s, not behind its proxy", m.ID, m.Address)
		}
	}

	for _, n := range c.Nodes {
		if _, err := n.WorkspaceLink.AddLatency(Downstream, 50*time.Millisecond, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Nodes[1].Link.AddLatency(Upstream, 20*time.Millisecond, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	mustSign(t, c, users[0], "2")
	for _, n := range c.Nodes {
		n.WorkspaceLink.ResetToxics(t.Context())
	}
	c.Nodes[1].Link.ResetToxics(t.Context())

	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	if c.Nodes[2].Running() {
		t.Fatal("n3 runs after Kill")
	}
	if err := c.Restart(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitVoters(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	mustSign(t, c, users[0], "3")

	rejected := submit(t, c, users[0], "50")
	if r, err := c.WaitRequest(t.Context(), users[0], rejected); err != nil || r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_REJECTED {
		t.Fatalf("a transaction over the limit: %v (%v), want rejected", r.GetState(), err)
	}

	f, err := os.Open(c.CallbackLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	log, err := check.ReadCallbackLog(f)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, d := range log.Decisions {
		actions[d.Action]++
	}
	if actions["APPROVE"] < 3 || actions["REJECT"] < 1 {
		t.Errorf("the handler's log decided %v, want 3 approvals and a rejection", actions)
	}
	cpu := c.CPU()
	for _, name := range []string{"workspace", "callback", "n1", "n2", "n3"} {
		if _, ok := cpu[name]; !ok {
			t.Errorf("no CPU time read for %s: %v", name, cpu)
		}
	}
	if cpu["workspace"] <= 0 {
		t.Errorf("the workspace spent %s of CPU, after keygen and presigning", cpu["workspace"])
	}

	// Attaching to the running cluster finds its nodes and user, and
	// refuses to act on processes that are not its own.
	var confs []string
	for _, n := range c.Nodes {
		confs = append(confs, n.ConfigPath)
	}
	a, err := Attach(t.Context(), cfg, confs, c.WorkspaceDir, c.CallbackLog)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	if !slices.Equal(a.Users, users) || len(a.Nodes) != 3 {
		t.Errorf("attached: users %v, %d nodes; want %v and 3", a.Users, len(a.Nodes), users)
	}
	if err := a.Kill(0); !errors.Is(err, ErrAttached) {
		t.Errorf("Kill on an attached cluster: %v, want ErrAttached", err)
	}
	if _, err := a.PoolDepth(t.Context()); err != nil {
		t.Errorf("attached pool depth: %v", err)
	}
	// One node short of the cluster is fine; a node that is down is not.
	c.Kill(2)
	if _, err := Attach(t.Context(), cfg, confs, c.WorkspaceDir, ""); err == nil || !strings.Contains(err.Error(), "n3") {
		t.Errorf("attach with n3 down: %v, want an error naming n3", err)
	}
}

// TestAttachRefuses checks that Attach fails with a message that says what
// is wrong when there is nothing to attach to.
func TestAttachRefuses(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.CallTimeout = time.Second
	if _, err := Attach(t.Context(), cfg, nil, cfg.Dir, ""); !errors.Is(err, ErrConfig) {
		t.Errorf("attach without nodes: %v, want ErrConfig", err)
	}
	if _, err := Attach(t.Context(), cfg, []string{filepath.Join(cfg.Dir, "missing.yaml")}, cfg.Dir, ""); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("attach with a missing config: %v, want an error naming it", err)
	}
	// A node that never started has no admin token.
	conf := filepath.Join(cfg.Dir, "n1.yaml")
	if err := os.WriteFile(conf, []byte(nodeConfig(cfg, "n1", "127.0.0.1:1", "127.0.0.1:1", "127.0.0.1:2", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Attach(t.Context(), cfg, []string{conf}, cfg.Dir, ""); err == nil || !strings.Contains(err.Error(), "has the node started") {
		t.Errorf("attach to a node that never started: %v", err)
	}
}
