package workspace_test

import (
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace"
)

// open opens (without serving) the workspace in dir with the given MPC
// settings (0: unset) and closes it again.
func open(t *testing.T, dir string, count, quorum int) (*protocol.WsSetup, error) {
	t.Helper()
	cfg := workspace.DefaultConfig()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.CloudCosigners = count
	cfg.Quorum = quorum
	cfg.Logger = slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelError}))
	ws, err := workspace.Open(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := ws.Close(); err != nil {
			t.Error(err)
		}
	}()
	if ws.ID() != ws.Setup().GetWorkspaceId() {
		t.Fatalf("ID %s, setup %v", ws.ID(), ws.Setup())
	}
	return ws.Setup(), nil
}

func wantSetup(t *testing.T, what string, got *protocol.WsSetup, err error, id string, count, quorum uint32) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if (id != "" && got.GetWorkspaceId() != id) || got.GetCloudCosigners() != count || got.GetQuorum() != quorum {
		t.Fatalf("%s: setup %v, want workspace %s with %d cloud co-signers, quorum %d", what, got, id, count, quorum)
	}
}

// TestSetupPersists checks that the MPC setup is part of the workspace's
// data: a restart with the settings unset keeps it, a contradicting
// setting is refused with both values named and changes nothing, and each
// new workspace gets its own ID and request ID prefix.
func TestSetupPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ws")
	first, err := open(t, dir, 1, 2)
	wantSetup(t, "first start, 2-of-2", first, err, "", 1, 2)
	if !strings.HasPrefix(first.GetWorkspaceId(), "ws-") || first.GetRequestIdPrefix() != "r-"+strings.TrimPrefix(first.GetWorkspaceId(), "ws-")+"-" {
		t.Fatalf("new workspace ID %q, request ID prefix %q", first.GetWorkspaceId(), first.GetRequestIdPrefix())
	}
	id := first.GetWorkspaceId()
	got, err := open(t, dir, 0, 0)
	wantSetup(t, "restart with nothing set", got, err, id, 1, 2)

	for _, tc := range []struct {
		name          string
		count, quorum int
		want          []string
	}{
		{"more cloud co-signers", 2, 0, []string{"cloud co-signers: 2 asked for, but it has 1"}},
		{"another quorum", 0, 3, []string{"quorum: 3 asked for, but it has 2"}},
		{"both", 2, 3, []string{"cloud co-signers: 2 asked for, but it has 1", "quorum: 3 asked for, but it has 2"}},
	} {
		_, err := open(t, dir, tc.count, tc.quorum)
		if !errors.Is(err, workspace.ErrSetupMismatch) {
			t.Fatalf("%s: err = %v, want %v", tc.name, err, workspace.ErrSetupMismatch)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: %q does not say %q", tc.name, err, w)
			}
		}
	}
	got, err = open(t, dir, 1, 2)
	wantSetup(t, "restart with the same settings", got, err, id, 1, 2)

	other, err := open(t, filepath.Join(t.TempDir(), "ws"), 0, 0)
	wantSetup(t, "another new workspace, defaults", other, err, "", 2, 3)
	if other.GetWorkspaceId() == id || other.GetRequestIdPrefix() == first.GetRequestIdPrefix() {
		t.Fatalf("two workspaces share an ID or a request ID prefix: %v and %v", first, other)
	}
	one, err := open(t, filepath.Join(t.TempDir(), "ws"), 1, 0)
	wantSetup(t, "one cloud co-signer, quorum unset", one, err, "", 1, 2)
	two, err := open(t, filepath.Join(t.TempDir(), "ws"), 0, 2)
	wantSetup(t, "quorum 2, cloud co-signers unset", two, err, "", 2, 2)

	// The workspace's users and requests carry its ID; its request IDs its
	// prefix, and pairing tokens its ID.
	e := serve(t, dir, clock.Real())
	u, tok := e.createUser(protocol.WsRole_WS_ROLE_APPROVER)
	if u.GetWorkspaceId() != id {
		t.Fatalf("user %s in workspace %s, want %s", u.GetId(), u.GetWorkspaceId(), id)
	}
	n := e.pairToken(tok)
	if n.creds.WorkspaceID != id {
		t.Fatalf("pairing learnt workspace %s, want %s", n.creds.WorkspaceID, id)
	}
	r, err := e.admin.SubmitConfigChange(ctx(t), &protocol.WsSubmitConfigChangeRequest{UserId: u.GetId(), ConfigChange: configChange()})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetId() != first.GetRequestIdPrefix()+"000001" || r.GetWorkspaceId() != id {
		t.Fatalf("request %s of workspace %s", r.GetId(), r.GetWorkspaceId())
	}
	if got, err := n.c.GetRequest(ctx(t), &protocol.WsGetRequestRequest{RequestId: r.GetId()}); err != nil || got.GetId() != r.GetId() {
		t.Fatalf("GetRequest(%s) = %v, %v", r.GetId(), got, err)
	}
	if _, err := n.c.GetRequest(ctx(t), &protocol.WsGetRequestRequest{RequestId: "r-000001"}); err == nil {
		t.Fatal("a request ID without the workspace's prefix was found")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		count, quorum int
		want          string
	}{
		{0, 0, ""}, {1, 2, ""}, {2, 3, ""}, {0, 3, ""},
		{3, 0, "CloudCosigners must be 1 or 2"},
		{-1, 0, "CloudCosigners must be 1 or 2"},
		{1, 3, "Quorum must be 2 to 2"},
		{0, 4, "Quorum must be 2 to 3"},
		{2, 1, "Quorum must be 2 to 3"},
	} {
		cfg := workspace.DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.CloudCosigners, cfg.Quorum = tc.count, tc.quorum
		err := cfg.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("count %d quorum %d: %v, want %q", tc.count, tc.quorum, err, tc.want)
		}
	}
}
