package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/node"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace"
	"github.com/coterie-mpc/coterie/workspace/client"
)

// runIO runs the coterie command with args and stdin, and returns its
// standard output and standard error.
func runIO(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	err := cmd.Execute()
	t.Logf("coterie %s\nstderr: %s", strings.Join(args, " "), stderr.String())
	return stdout.String(), stderr.String(), err
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testSlog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// inProcessNode is a workspace (2-of-2) and a node running in this
// process, with the node's config file, for the commands that talk to a
// running node.
type inProcessNode struct {
	dir    string
	config string
	admin  *client.Admin
	node   *node.Node
}

// startInProcessNode starts a workspace and a node; extraConfig is
// appended to the node's YAML config.
func startInProcessNode(t *testing.T, extraConfig string) *inProcessNode {
	t.Helper()
	e := &inProcessNode{dir: t.TempDir()}
	wcfg := workspace.DefaultConfig()
	wcfg.DataDir = filepath.Join(e.dir, "ws")
	wcfg.Listen = "127.0.0.1:0"
	wcfg.CloudCosigners, wcfg.Quorum = 1, 2
	wcfg.Logger = testSlog(t)
	ws, err := workspace.Open(wcfg)
	if err != nil {
		t.Fatal(err)
	}
	ws.Start()
	t.Cleanup(func() { _ = ws.Close() })
	if e.admin, err = client.DialAdmin(wcfg.DataDir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.admin.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raftAddr := ln.Addr().String()
	ln.Close()
	e.config = filepath.Join(e.dir, "node.yaml")
	conf := fmt.Sprintf("node_id: n1\ndata_dir: node\nenclave:\n  sim_platform_key: platform.key\nraft:\n  bind: %q\n"+
		"admin:\n  listen: 127.0.0.1:0\n%spresign:\n  target_depth: 0\n  max_depth: 0\n", raftAddr, extraConfig)
	if err := os.WriteFile(e.config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := node.LoadConfig(e.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = testSlog(t)
	if e.node, err = node.New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.node.Close() })
	if err := e.node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// approverToken creates an approver-only API user, whose pairing needs no
// key generation, and returns its id and pairing token.
func (e *inProcessNode) approverToken(t *testing.T) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.admin.CreateUser(ctx, &protocol.WsCreateUserRequest{Name: "cli", Role: protocol.WsRole_WS_ROLE_APPROVER})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetUser().GetId(), resp.GetPairingToken()
}

// TestNodePairTokenSources pairs through the CLI with the token on
// standard input, in a file, and (with a warning) on the command line.
func TestNodePairTokenSources(t *testing.T) {
	e := startInProcessNode(t, "")
	const warning = "warning: --token shows the pairing token"

	id, tok := e.approverToken(t)
	out, stderr, err := runIO(t, tok+"\n", "node", "pair", "--config", e.config, "--token-file", "-")
	if err != nil || !strings.Contains(out, "paired API user "+id) || strings.Contains(stderr, warning) {
		t.Fatalf("--token-file -: %v\n%s\n%s", err, out, stderr)
	}

	id, tok = e.approverToken(t)
	path := filepath.Join(e.dir, "token")
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = runIO(t, "", "node", "pair", "--config", e.config, "--token-file", path)
	if err != nil || !strings.Contains(out, "paired API user "+id) || strings.Contains(stderr, warning) {
		t.Fatalf("--token-file PATH: %v\n%s\n%s", err, out, stderr)
	}

	id, tok = e.approverToken(t)
	out, stderr, err = runIO(t, "", "node", "pair", "--config", e.config, "--token", tok)
	if err != nil || !strings.Contains(out, "paired API user "+id) || !strings.Contains(stderr, warning) {
		t.Fatalf("--token: %v\n%s\n%s", err, out, stderr)
	}
	if strings.Contains(stderr, tok) {
		t.Fatal("the warning repeats the token")
	}

	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"no token", "", nil, "token-file"},
		{"both", tok, []string{"--token", tok, "--token-file", "-"}, "none of the others can be"},
		{"empty input", "\n", []string{"--token-file", "-"}, "standard input holds no pairing token"},
		{"missing file", "", []string{"--token-file", filepath.Join(e.dir, "nope")}, "no such file"},
		{"huge input", strings.Repeat("x", maxTokenBytes+1), []string{"--token-file", "-"}, "no pairing token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"node", "pair", "--config", e.config}, tc.args...)
			if _, _, err := runIO(t, tc.stdin, args...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one that says %q", err, tc.want)
			}
		})
	}
}
