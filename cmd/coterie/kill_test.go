package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/enclave/backend"
	"github.com/coterie-mpc/coterie/enclave/store"
	"github.com/coterie-mpc/coterie/node"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/client"
	wsstore "github.com/coterie-mpc/coterie/workspace/store"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// buildBinary builds the coterie binary once per test process, without the
// race detector, so that the processes' MPC runs at full speed.
func buildBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "coterie-bin-"); buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, "coterie"), ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "coterie")
}

// TestMain removes the binary the real-process tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// proc is a coterie process the test started.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startProc(t testing.TB, bin, dir, name string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	p := &proc{t: t, name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits a bounded time for a clean exit.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Errorf("%s did not stop within 20s of SIGTERM", p.name)
		p.kill()
	}
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

func loopbackAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startWorkspace runs a workspace simulator in dir/ws with the given
// number of cloud co-signers, all of them and the node signing (2-of-2 or
// 3-of-3), and returns it with an admin connection, closed when the test
// ends.
func startWorkspace(t testing.TB, bin, dir string, cosigners int) (*proc, *client.Admin) {
	t.Helper()
	return startWorkspaceAt(t, bin, dir, cosigners, loopbackAddr(t))
}

// startWorkspaceAt is startWorkspace listening on listen.
func startWorkspaceAt(t testing.TB, bin, dir string, cosigners int, listen string) (*proc, *client.Admin) {
	t.Helper()
	wsDir := filepath.Join(dir, "ws")
	ws := startProc(t, bin, dir, "workspace", "workspace", "serve", "--data-dir", wsDir, "--listen", listen,
		"--cloud-cosigners", fmt.Sprint(cosigners), "--quorum", fmt.Sprint(cosigners+1), "--log-level", "warn")
	var admin *client.Admin
	waitFor(t, 30*time.Second, "the workspace", func() bool {
		a, err := client.DialAdmin(wsDir)
		if err != nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if a.WaitReady(ctx) != nil {
			a.Close()
			return false
		}
		admin = a
		return true
	}, ws)
	t.Cleanup(func() { admin.Close() })
	return ws, admin
}

// waitFor polls cond every 100 ms until it holds or d passes, and fails
// the test with the processes' logs if it does not.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool, procs ...*proc) {
	t.Helper()
	if !poll(d, cond) {
		for _, p := range procs {
			t.Logf("%s log:\n%s", p.name, p.tail())
		}
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

// poll calls cond every 100 ms until it holds, and reports whether it did
// within d. The real-process tests watch other processes through their
// APIs, which send no events to wait on.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// TestKillNineMidLoad runs a workspace and a node as real processes on
// loopback, pairs them, submits a batch, kills the node with SIGKILL while
// it signs, restarts it, and checks that every request completes and that
// no presignature was used twice: in the workspace's ledger (one signature
// per presignature, all verified) and in the node's raft state, opened
// offline after the node stopped.
func TestKillNineMidLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	dir := t.TempDir()
	bin := buildBinary(t)

	_, admin := startWorkspace(t, bin, dir, 1)

	confPath := filepath.Join(dir, "node.yaml")
	conf := fmt.Sprintf(`node_id: kill-node
data_dir: node
enclave:
  sim_platform_key: platform.key
raft:
  bind: %q
admin:
  listen: %q
presign:
  target_depth: 2
  max_depth: 3
owner_timeout: 2s
log:
  level: info
`, loopbackAddr(t), loopbackAddr(t))
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := node.LoadConfig(confPath)
	if err != nil {
		t.Fatal(err)
	}
	runNode := func(name string) (*proc, *node.AdminClient) {
		p := startProc(t, bin, dir, name, "node", "run", "--config", confPath)
		var ac *node.AdminClient
		waitFor(t, 60*time.Second, name+" to be healthy", func() bool {
			if ac == nil {
				if ac, err = node.NewAdminClient(cfg); err != nil {
					ac = nil
					return false
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			return ac.Healthy(ctx)
		}, p)
		return p, ac
	}
	n1, _ := runNode("node-1")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	created, err := admin.CreateUser(ctx, &protocol.WsCreateUserRequest{Name: "kill", Role: protocol.WsRole_WS_ROLE_BOTH})
	if err != nil {
		t.Fatal(err)
	}
	user := created.GetUser().GetId()
	// The node's records of the user are named after its workspace and id.
	userRecord := created.GetUser().GetWorkspaceId() + "/" + user
	pair := exec.Command(bin, "node", "pair", "--config", confPath, "--token-file", "-")
	pair.Stdin = strings.NewReader(created.GetPairingToken())
	if out, err := pair.CombinedOutput(); err != nil {
		t.Fatalf("node pair: %v\n%s\nnode log:\n%s", err, out, n1.tail())
	}

	const txs = 6
	var ids []string
	for i := range txs {
		amount := fmt.Sprintf("%d", i+1)
		r, err := admin.SubmitTransaction(ctx, &protocol.WsSubmitTransactionRequest{UserId: user, Transaction: &protocol.WsTransaction{
			Asset: "ETH", Amount: amount, Source: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
			Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "0xk111"}, Amount: amount}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.GetId())
	}
	r, err := admin.SubmitConfigChange(ctx, &protocol.WsSubmitConfigChangeRequest{UserId: user, ConfigChange: &protocol.WsConfigChange{
		Type:    protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ENABLE_ONE_TIME_ADDRESS,
		Payload: &protocol.WsConfigChange_OneTimeAddress{OneTimeAddress: &protocol.WsOneTimeAddress{Enabled: true}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, r.GetId())

	states := func() map[string]*protocol.WsRequest {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		resp, err := admin.ListRequests(cctx, &protocol.WsListRequestsRequest{UserId: user})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]*protocol.WsRequest{}
		for _, r := range resp.GetRequests() {
			m[r.GetId()] = r
		}
		return m
	}
	count := func(m map[string]*protocol.WsRequest) (signed, done int) {
		for _, id := range ids {
			s := m[id].GetState()
			if s == protocol.WsRequestState_WS_REQUEST_STATE_SIGNED {
				signed++
			}
			if wsstore.Terminal(s) {
				done++
			}
		}
		return signed, done
	}
	// Kill as soon as the first signature is recorded: the rest are in
	// flight or waiting for presignatures.
	waitFor(t, 2*time.Minute, "the first signature", func() bool {
		signed, _ := count(states())
		return signed >= 1
	}, n1)
	n1.kill()
	_, doneAtKill := count(states())
	if doneAtKill == len(ids) {
		t.Fatalf("every request finished before the kill: no load to interrupt")
	}
	t.Logf("killed the node with %d of %d requests finished", doneAtKill, len(ids))

	n2, ac := runNode("node-2")
	waitFor(t, 3*time.Minute, "every request to finish after the restart", func() bool {
		_, done := count(states())
		return done == len(ids)
	}, n2)
	final := states()
	for i, id := range ids {
		want := protocol.WsRequestState_WS_REQUEST_STATE_SIGNED
		if i == txs {
			want = protocol.WsRequestState_WS_REQUEST_STATE_APPROVED
		}
		if final[id].GetState() != want {
			t.Errorf("%s: %v (%s), want %v", id, final[id].GetState(), final[id].GetReason(), want)
		}
	}
	st, err := ac.Status(ctx)
	if err != nil || st.Requests != 0 {
		t.Errorf("node still owns %d requests (%v)", st.Requests, err)
	}

	// The workspace's ledger: every signature verifies and each used a
	// different presignature.
	v, err := admin.Verify(ctx, &protocol.WsVerifyRequest{})
	if err != nil || len(v.GetProblems()) != 0 || v.GetSignaturesChecked() != txs {
		t.Fatalf("workspace verify: %v %v", v, err)
	}
	wsUsed := map[string]string{}
	for _, id := range ids[:txs] {
		for _, sig := range final[id].GetSignatures() {
			if other, dup := wsUsed[sig.GetPresignId()]; dup {
				t.Fatalf("workspace: presignature %s signed both %s and %s", sig.GetPresignId(), other, id)
			}
			wsUsed[sig.GetPresignId()] = id
		}
	}

	// The node's raft state, opened offline once the node has stopped, with
	// the node's own identity (the cluster port is mutual TLS).
	n2.stop()
	ccfg := cluster.DefaultConfig()
	ccfg.NodeID, ccfg.DataDir, ccfg.BindAddr = cfg.NodeID, cfg.DataDir, cfg.Raft.Bind
	ccfg.Identity = unsealOffline(t, cfg).Identity
	ccfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := cluster.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	// The leader replays the log after its election; a barrier returns once
	// the FSM has applied all of it.
	waitFor(t, 30*time.Second, "the offline FSM to replay the log", func() bool {
		return c.Barrier(5*time.Second) == nil
	})
	fsmUsed := map[string]string{}
	for _, id := range ids {
		info, ok := c.Request(id)
		if !ok || info.Status != cluster.StatusCompleted {
			t.Fatalf("FSM: request %s is %+v", id, info)
		}
		for _, p := range info.Reserved {
			if other, dup := fsmUsed[p.ID]; dup {
				t.Fatalf("FSM: presignature %s reserved by %s and %s", p.ID, other, id)
			}
			fsmUsed[p.ID] = id
		}
	}
	for presig, req := range wsUsed {
		key := ""
		for _, rec := range c.KeyRecords() {
			if rec.OwnerID == userRecord && strings.Contains(rec.ID, "/share/") {
				key = rec.ID
			}
		}
		info, ok := c.Presignature(key, presig)
		if !ok || info.RequestID != req || info.Status != cluster.PresignatureUsed {
			t.Errorf("FSM: the workspace signed %s with presignature %s, the FSM says %+v", req, presig, info)
		}
	}
}

// unsealOffline opens a stopped sim node's store with its enclave, as
// `node run` does at start, and returns what it unsealed.
func unsealOffline(t *testing.T, cfg node.Config) node.Unsealed {
	t.Helper()
	scfg := store.DefaultConfig()
	scfg.Dir = cfg.DataDir
	st, err := store.Open(scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bcfg := backend.DefaultConfig()
	bcfg.DataDir, bcfg.SimPlatformKeyFile = cfg.DataDir, cfg.Enclave.SimPlatformKey
	u, err := node.Unseal(st, bcfg)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
