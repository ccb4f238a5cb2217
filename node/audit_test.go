package node

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster/audit"
	"github.com/coterie-mpc/coterie/protocol"
)

// TestAuditEndToEnd signs a transaction and approves a config change on a
// real node with the workspace simulator, then reads the audit log through
// the admin API: the claim, the handler's decision with its key id (auto:
// no handler is configured) and what the request asked, the reservation
// and the outcome are there, and the chain verifies. Then the retention
// exports the oldest entries to a private segment file and truncates:
// the file verifies and links to the chain the node goes on with.
func TestAuditEndToEnd(t *testing.T) {
	dir := t.TempDir()
	wsDir := filepath.Join(dir, "ws")
	copyDir(t, filepath.Join(fixtureRoot, "ws"), wsDir)
	ws, admin := testWorkspace(t, wsDir)
	cfg := testConfig(t, dir)
	cfg.Audit.RetainEntries = 10
	n := startNode(t, cfg)
	u, _ := importFixture(t, n, ws.Addr())

	ctx := ctxT(t, time.Minute)
	tx, err := admin.SubmitTransaction(ctx, &protocol.WsSubmitTransactionRequest{UserId: u.Info.ID, Transaction: &protocol.WsTransaction{
		Asset: "ETH", Amount: "1.25", Source: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
		Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "0xdest"}, Amount: "1.25"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := admin.SubmitConfigChange(ctx, &protocol.WsSubmitConfigChangeRequest{UserId: u.Info.ID, ConfigChange: allConfigChanges()[2]})
	if err != nil {
		t.Fatal(err)
	}
	waitTerminal(t, admin, []string{tx.GetId(), cc.GetId()}, 2*time.Minute)
	waitCompleted(t, n, tx.GetId(), cc.GetId())

	ac, err := NewAdminClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ac.Audit(ctx, AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.VerifyHead(l.Anchor, l.Entries, l.Head); err != nil {
		t.Fatal(err)
	}
	kinds := func(req string) []string {
		var out []string
		for _, e := range l.Entries {
			if e.Request == req {
				out = append(out, e.Kind.String())
			}
		}
		return out
	}
	if got := strings.Join(kinds(tx.GetId()), ","); got != "claimed,decided,reserved,completed" {
		t.Errorf("transaction's entries: %s", got)
	}
	if got := strings.Join(kinds(cc.GetId()), ","); got != "claimed,decided,completed" {
		t.Errorf("config change's entries: %s", got)
	}
	for _, e := range l.Entries {
		switch {
		case e.Kind == audit.KindDecided && e.Request == tx.GetId():
			if e.Action != "APPROVE" || e.HandlerKey != audit.AutoKeyID || len(e.Digest) != 64 || e.Node != "n1" ||
				!strings.Contains(e.Detail, "1.25 ETH") || !strings.Contains(e.Detail, "0xdest") {
				t.Errorf("transaction decision: %+v", e)
			}
		case e.Kind == audit.KindDecided:
			if e.Action != "APPROVE" || e.HandlerKey != audit.AutoKeyID || e.Detail != "UNMANAGED_WALLET" {
				t.Errorf("config change decision: %+v", e)
			}
		case e.Kind == audit.KindCompleted && e.Request == tx.GetId() && e.Outcome != "signed",
			e.Kind == audit.KindCompleted && e.Request == cc.GetId() && e.Outcome != "approved":
			t.Errorf("outcome: %+v", e)
		}
	}

	// Following: a wait past the head returns when an entry arrives, or
	// empty when none does.
	l2, err := ac.Audit(ctx, AuditQuery{From: l.Head.Seq + 1, Wait: 50 * time.Millisecond})
	if err != nil || len(l2.Entries) != 0 {
		t.Fatalf("follow with nothing new: %v, %d entries", err, len(l2.Entries))
	}

	// Retention: more than 10 entries, so the leader exports all but 5.
	path, err := n.exportAudit(ctx)
	if err != nil || path == "" {
		t.Fatalf("export: %q, %v", path, err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("segment file: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seg, err := audit.ReadSegment(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := seg.Verify(); err != nil {
		t.Fatal(err)
	}
	after, err := ac.Audit(ctx, AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Anchor != seg.Head() || after.Anchor.Seq != l.Head.Seq-5 || after.Retained != 6 {
		t.Fatalf("after the export: anchor %+v (segment head %+v), %d retained", after.Anchor, seg.Head(), after.Retained)
	}
	if last := after.Entries[len(after.Entries)-1]; last.Kind != audit.KindTruncated || last.Number != seg.Head().Seq {
		t.Fatalf("the truncation is not recorded: %+v", last)
	}
	if err := audit.VerifyHead(audit.Anchor{}, append(seg.Entries, after.Entries...), after.Head); err != nil {
		t.Fatalf("segment and retained chain: %v", err)
	}
	// Below the retention nothing more is exported.
	if path, err := n.exportAudit(ctx); err != nil || path != "" {
		t.Fatalf("second export: %q, %v", path, err)
	}
	// A stale truncation is refused and changes nothing.
	if err := ac.TruncateAudit(ctx, seg.Head().Seq, seg.Head().Hash); !errors.Is(err, ErrRefused) {
		t.Fatalf("stale truncation: %v", err)
	}
}
