package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster/audit"
	"github.com/coterie-mpc/coterie/protocol"
)

// TestNodeAudit pairs an approver through the CLI, has a config change
// approved, and reads the audit log with `coterie node audit`: the pairing
// and the request's claim, decision (with the handler key id) and outcome
// are there, and neither the pairing token nor anything sealed is. The
// chain verifies; `audit export` writes a private segment and drops it
// from the cluster, the file verifies and links to the node's chain; a
// tampered copy is refused with its first broken entry named.
func TestNodeAudit(t *testing.T) {
	e := startInProcessNode(t, "")
	id, tok := e.approverToken(t)
	if _, _, err := runIO(t, tok+"\n", "node", "pair", "--config", e.config, "--token-file", "-"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := e.admin.SubmitConfigChange(ctx, &protocol.WsSubmitConfigChangeRequest{UserId: id, ConfigChange: &protocol.WsConfigChange{
		Type:    protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_UNMANAGED_WALLET,
		Payload: &protocol.WsConfigChange_UnmanagedWallet{UnmanagedWallet: &protocol.WsUnmanagedWallet{Name: "w", Asset: "BTC", Address: "bc1qaudit"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the request's outcome to be recorded.
	var out string
	for !strings.Contains(out, `"outcome":"approved"`) {
		if out, err = run(t, "node", "audit", "--config", e.config, "--json", "--since", "1h"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no approval in the audit log:\n%s", out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if strings.Contains(out, tok) || strings.Contains(out, "sealed") {
		t.Fatalf("the audit log holds a secret:\n%s", out)
	}
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var en audit.Entry
		if err := json.Unmarshal([]byte(line), &en); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		kinds = append(kinds, en.Kind.String())
		if en.Kind == audit.KindDecided && (en.HandlerKey != audit.AutoKeyID || en.Action != "APPROVE" || en.Request != r.GetId()) {
			t.Errorf("decision: %+v", en)
		}
	}
	if got := strings.Join(kinds, ","); !strings.Contains(got, "key-record-added,api-user-added") || !strings.HasSuffix(got, "claimed,decided,completed") {
		t.Errorf("entries: %s", got)
	}
	if out, err := run(t, "node", "audit", "--config", e.config); err != nil || !strings.Contains(out, "decided node=\"n1\" request=\""+r.GetId()) {
		t.Fatalf("audit: %v\n%s", err, out)
	}
	if out, err := run(t, "node", "audit", "--config", e.config, "--verify"); err != nil || !strings.HasPrefix(out, "node: ok, entries 1 to ") {
		t.Fatalf("verify: %v\n%s", err, out)
	}

	seg := filepath.Join(e.dir, "audit-1.jsonl")
	if out, err := run(t, "node", "audit", "export", "--config", e.config, seg); err != nil || !strings.Contains(out, "exported entries 1 to ") {
		t.Fatalf("export: %v\n%s", err, out)
	}
	if info, err := os.Stat(seg); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("segment: %v", err)
	}
	out, err = run(t, "node", "audit", "--verify", "--file", seg, "--config", e.config, "--json")
	var verdicts []auditVerdict
	if err != nil || json.Unmarshal([]byte(out), &verdicts) != nil || len(verdicts) != 2 || !verdicts[0].OK || !verdicts[1].OK {
		t.Fatalf("verify the export and the node: %v\n%s", err, out)
	}
	if verdicts[1].Anchor != verdicts[0].Head || verdicts[1].Entries != 1 {
		t.Fatalf("the node's chain does not go on from the export: %+v", verdicts)
	}

	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(e.dir, "tampered.jsonl")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(data), `"outcome":"approved"`, `"outcome":"rejected"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "node", "audit", "--verify", "--file", bad)
	var bl *audit.BrokenLinkError
	if !errors.As(err, &bl) || bl.Seq != verdicts[0].Head.Seq || !strings.Contains(out, "BROKEN: audit: broken chain at entry") {
		t.Fatalf("a tampered export: %v\n%s", err, out)
	}
	// A file that does not reach the node's anchor is refused too.
	if _, err := run(t, "node", "audit", "--verify", "--file", bad, "--config", e.config); !errors.As(err, &bl) {
		t.Fatalf("a tampered export against the node: %v", err)
	}
}
