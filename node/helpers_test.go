package node

import (
	"context"
	"encoding/hex"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace"
	"github.com/coterie-mpc/coterie/workspace/client"
)

type tlog struct{ t testing.TB }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(strings.TrimSpace(string(p))); return len(p), nil }

func testLogger(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: level}))
}

// testWorkspace serves a 2-of-2 workspace (one cloud co-signer) in dir.
func testWorkspace(t testing.TB, dir string) (*workspace.Workspace, *client.Admin) {
	t.Helper()
	cfg := workspace.DefaultConfig()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.CloudCosigners = 1
	cfg.Quorum = 2
	cfg.Logger = testLogger(t, slog.LevelWarn)
	ws, err := workspace.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ws.Start()
	admin, err := client.DialAdmin(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Close()
		if err := ws.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return ws, admin
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// testConfig is a node config in dir on loopback ports.
func testConfig(t testing.TB, dir string) Config {
	cfg := DefaultConfig()
	cfg.NodeID = "n1"
	cfg.DataDir = filepath.Join(dir, "node")
	cfg.Enclave.SimPlatformKey = filepath.Join(dir, "platform.key")
	cfg.Raft.Bind = freeAddr(t)
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Presign.TargetDepth = 0
	cfg.Presign.MaxDepth = 0
	cfg.Logger = testLogger(t, slog.LevelInfo)
	return cfg
}

func startNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func createUser(t testing.TB, admin *client.Admin, role protocol.WsRole) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := admin.CreateUser(ctx, &protocol.WsCreateUserRequest{Name: "node-test", Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetUser().GetId(), resp.GetPairingToken()
}

func hexs(b []byte) string { return hex.EncodeToString(b) }
