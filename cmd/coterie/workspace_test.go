package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace"
	"github.com/coterie-mpc/coterie/workspace/client"
	"github.com/coterie-mpc/coterie/workspace/store"
)

// wsRun runs the coterie command in-process and returns its stdout.
func wsRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	err := cmd.Execute()
	if stderr.Len() > 0 {
		t.Log(strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), err
}

// wsServer is `coterie workspace serve` in a child process, so that the
// test can kill it with SIGKILL.
type wsServer struct {
	cmd *exec.Cmd
	// setup is the line in which serve states the workspace's ID and MPC
	// setup.
	setup string
}

// startWsServer serves dir as a 2-of-2 workspace (one cloud co-signer).
func startWsServer(t *testing.T, dir, listen string) *wsServer {
	t.Helper()
	return startWsServerFlags(t, dir, listen, "--cloud-cosigners", "1", "--quorum", "2")
}

// startWsServerFlags serves dir with the given serve flags.
func startWsServerFlags(t *testing.T, dir, listen string, flags ...string) *wsServer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWorkspaceServeChild$")
	cmd.Env = append(os.Environ(), "COTERIE_WS_CHILD="+strings.Join(append([]string{dir, listen}, flags...), "|"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &bytes.Buffer{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &wsServer{cmd: cmd}
	t.Cleanup(s.kill)
	// The child prints its address once it serves.
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "workspace serving at ") {
			if sc.Scan() {
				s.setup = sc.Text()
			}
			go func() { // drain, so the child never blocks on a full pipe
				for sc.Scan() {
				}
			}()
			return s
		}
	}
	t.Fatalf("workspace serve did not start: %s", cmd.Stderr)
	return nil
}

func (s *wsServer) kill() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		_ = s.cmd.Wait()
	}
}

// TestWorkspaceServeChild is the server process of the CLI tests.
func TestWorkspaceServeChild(t *testing.T) {
	spec := os.Getenv("COTERIE_WS_CHILD")
	if spec == "" {
		t.Skip("run by the workspace CLI tests")
	}
	args := strings.Split(spec, "|")
	cmd := newRootCmd()
	cmd.SetArgs(append([]string{"workspace", "serve", "--data-dir", args[0], "--listen", args[1], "--log-level", "warn"}, args[2:]...))
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
}

// TestWorkspaceCLI runs the commands as a new user would, against a served
// workspace, kills the server with SIGKILL, restarts it, and checks that
// `requests` still shows everything submitted and that `verify` passes, and
// that it fails once a stored approval is corrupted.
func TestWorkspaceCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ws")
	srv := startWsServer(t, dir, "127.0.0.1:0")
	addr, err := os.ReadFile(filepath.Join(dir, workspace.FileAddress))
	if err != nil {
		t.Fatal(err)
	}
	listen := strings.TrimSpace(string(addr))

	tok, err := wsRun(t, "workspace", "create-user", "--data-dir", dir, "--role", "approver", "--name", "desk")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wsRun(t, "workspace", "create-user", "--data-dir", dir, "--role", "nobody"); err == nil {
		t.Fatal("create-user accepted role nobody")
	}
	// A co-signer pairs with the pasted token.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	cb, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	creds, _, err := client.Pair(ctx, client.PairConfig{Token: strings.TrimSpace(tok), ApprovalKey: pub, CallbackKey: cb.Public()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(creds)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var submitted []string
	for _, typ := range []string{"EXCHANGE", "FIAT_ACCOUNT", "UNMANAGED_WALLET", "ADD_NETWORK_CONNECTION", "ADD_USER", "CHANGE_QUORUM_THRESHOLD", "RE_ENROLL_DEVICE", "ENABLE_ONE_TIME_ADDRESS"} {
		out, err := wsRun(t, "workspace", "submit", "config-change", "--data-dir", dir, "--user", creds.UserID, "--type", typ)
		if err != nil {
			t.Fatalf("submit %s: %v", typ, err)
		}
		submitted = append(submitted, strings.TrimSpace(out))
	}
	if _, err := wsRun(t, "workspace", "submit", "config-change", "--data-dir", dir, "--user", creds.UserID, "--type", "NOPE"); err == nil {
		t.Fatal("unknown type accepted")
	}
	if _, err := wsRun(t, "workspace", "submit", "tx", "--data-dir", dir, "--user", creds.UserID, "--asset", "ETH", "--amount", "1", "--to", "0xabc"); err == nil || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Fatalf("transaction for an approver: %v", err)
	}
	// Approve the first two through the co-signer API.
	for _, id := range submitted[:2] {
		r, err := c.GetRequest(ctx, &protocol.WsGetRequestRequest{RequestId: id})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Approve(ctx, r, priv); err != nil {
			t.Fatal(err)
		}
	}

	srv.kill()
	if _, err := wsRun(t, "workspace", "requests", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "not reachable") {
		t.Fatalf("requests with the server down: %v", err)
	}
	srv = startWsServer(t, dir, listen)

	out, err := wsRun(t, "workspace", "requests", "--data-dir", dir, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var listed []struct {
		ID        string `json:"id"`
		State     string `json:"state"`
		Seq       any    `json:"seq"`
		CreatedAt string `json:"created_at"`
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("requests --json: %v\n%s", err, out)
	}
	if len(listed) != len(submitted) {
		t.Fatalf("after kill -9: %d requests listed, %d submitted", len(listed), len(submitted))
	}
	for i, r := range listed {
		if r.ID != submitted[i] {
			t.Fatalf("request %d is %s, submitted %s", i, r.ID, submitted[i])
		}
		// Times are RFC 3339 and counters are numbers, not protojson's
		// strings of nanoseconds.
		if _, err := time.Parse(time.RFC3339Nano, r.CreatedAt); err != nil {
			t.Errorf("request %s: created_at %q: %v", r.ID, r.CreatedAt, err)
		}
		if _, ok := r.Seq.(float64); !ok {
			t.Errorf("request %s: seq %#v is not a number", r.ID, r.Seq)
		}
	}
	if listed[0].State != "WS_REQUEST_STATE_APPROVED" {
		t.Fatalf("approved request after restart: %s", listed[0].State)
	}
	out, err = wsRun(t, "workspace", "requests", "--data-dir", dir, "--state", "approved")
	if err != nil || strings.Count(out, creds.UserID) != 2 {
		t.Fatalf("requests --state approved: %v\n%s", err, out)
	}
	out, err = wsRun(t, "workspace", "verify", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "2 approvals checked, 0 invalid") {
		t.Fatalf("verify: %v\n%s", err, out)
	}

	// Corrupt one approval behind the server's back: verify must fail.
	srv.kill()
	cfg := store.DefaultConfig()
	cfg.Path = filepath.Join(dir, workspace.FileDB)
	st, err := store.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.RecordApproval(creds.UserID, submitted[2], make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	startWsServer(t, dir, listen)
	out, err = wsRun(t, "workspace", "verify", "--data-dir", dir)
	if err == nil || !strings.Contains(out, "INVALID "+submitted[2]) {
		t.Fatalf("verify of a corrupted approval: %v\n%s", err, out)
	}
}
