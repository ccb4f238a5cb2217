package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/coterie-mpc/coterie/cluster/audit"
)

// runAudit runs the audit log's script commands:
//
//	reserve-decided node= req= key= [id=] action= [reason=] [handler=] [digest=] [detail=]
//	decide node= req= action= [reason=] [handler=] [digest=] [detail=]
//	audit [from=] [limit=]      the retained entries, anchor and head
//	audit-truncate node= up-to= [hash=bad]
//	audit-verify                 Verify of the retained chain from its anchor
func (d *fsmDriver) runAudit(c scriptCase) (string, bool) {
	arg := func(k string) string { return c.args[k] }
	decision := func() Decision {
		return Decision{Action: arg("action"), Reason: arg("reason"), HandlerKey: arg("handler"),
			ContentDigest: []byte(arg("digest")), Detail: arg("detail")}
	}
	switch c.cmd {
	case "reserve-decided":
		return d.apply(c, attachDecision(ReserveCommand(arg("req"), PresignatureRef{KeyID: arg("key"), ID: arg("id")}), decision())), true
	case "decide":
		return d.apply(c, DecideCommand(arg("req"), decision())), true
	case "audit":
		from, _ := strconv.ParseUint(arg("from"), 10, 64)
		limit, _ := strconv.Atoi(arg("limit"))
		return formatAudit(d.fsm.Audit(from, limit)), true
	case "audit-truncate":
		upTo, err := strconv.ParseUint(arg("up-to"), 10, 64)
		if err != nil {
			d.t.Fatalf("%s: up-to: %v", c.pos, err)
		}
		var h audit.Digest
		if es := d.fsm.Audit(upTo, 1).Entries; len(es) == 1 && es[0].Seq == upTo {
			h = es[0].Hash
		}
		if arg("hash") == "bad" {
			h[0] ^= 0xff
		}
		return d.apply(c, AuditTruncateCommand(upTo, h)), true
	case "audit-verify":
		p := d.fsm.Audit(0, 0)
		if err := audit.VerifyHead(p.Anchor, p.Entries, p.Head); err != nil {
			return "error: " + err.Error(), true
		}
		return fmt.Sprintf("ok %d entries after %d", len(p.Entries), p.Anchor.Seq), true
	}
	return "", false
}

// formatAudit prints entries one a line, their hashes shortened.
func formatAudit(p AuditPage) string {
	out := []string{fmt.Sprintf("anchor=%d/%s head=%d/%s", p.Anchor.Seq, short(p.Anchor.Hash), p.Head.Seq, short(p.Head.Hash))}
	for _, e := range p.Entries {
		s := fmt.Sprintf("%d index=%d at=%d %s", e.Seq, e.Index, e.Time.UnixNano(), e.Kind)
		for _, kv := range []struct{ k, v string }{
			{"node", e.Node}, {"req", e.Request}, {"user", e.APIUser}, {"subject", e.Subject}, {"key", e.Key},
			{"presig", e.Presignature}, {"action", e.Action}, {"outcome", e.Outcome}, {"reason", e.Reason},
			{"handler", e.HandlerKey}, {"digest", e.Digest}, {"detail", e.Detail},
		} {
			if kv.v != "" {
				s += fmt.Sprintf(" %s=%q", kv.k, kv.v)
			}
		}
		if e.Number != 0 {
			s += fmt.Sprintf(" number=%d", e.Number)
		}
		out = append(out, s)
	}
	return strings.Join(out, "\n")
}

func short(d audit.Digest) string { return d.String()[:8] }

// TestAuditRestoredChainContinues checks that a replica restored from a
// snapshot taken mid-log, then fed the rest of the log, ends with the same
// audit chain head as the replica that applied everything, and that two
// replicas of the same log agree entry for entry.
func TestAuditRestoredChainContinues(t *testing.T) {
	d := newFSMDriver(t)
	script := []string{
		`add-presignatures node=n1 key=k1 ids=p1,p2,p3`,
		`claim node=n1 req=r1 user=u1`,
		`reserve-decided node=n1 req=r1 key=k1 action=APPROVE handler=auto digest=abc`,
		`snapshot`,
		`complete node=n1 req=r1 outcome=signed`,
		`claim node=n2 req=r2 user=u1`,
		`reserve node=n2 req=r2 key=k1`,
		`release node=n1 target=n2`,
	}
	for i, line := range script {
		cmd, args := parseCommandLine(t, fmt.Sprint(i), line)
		if out := d.run(scriptCase{pos: fmt.Sprint(i), raw: line, cmd: cmd, args: args}); strings.HasPrefix(out, "error") {
			t.Fatalf("%s: %s", line, out)
		}
	}
	want := d.fsm.Audit(0, 0)
	if want.Head.Seq != 7 {
		t.Fatalf("head %d, want 7 entries:\n%s", want.Head.Seq, formatAudit(want))
	}
	restored := NewFSM()
	if err := restored.Restore(io.NopCloser(bytes.NewReader(d.snap))); err != nil {
		t.Fatal(err)
	}
	if h := restored.Audit(0, 0).Head; h.Seq != 3 {
		t.Fatalf("snapshot head %d, want 3", h.Seq)
	}
	replica := NewFSM()
	for _, l := range d.log {
		replica.Apply(l)
	}
	for _, l := range d.log[d.snapLen:] {
		restored.Apply(l)
	}
	for name, f := range map[string]*FSM{"restored": restored, "replica": replica} {
		got := f.Audit(0, 0)
		if got.Head != want.Head || formatAudit(got) != formatAudit(want) {
			t.Errorf("%s: chain\n%s\nwant\n%s", name, formatAudit(got), formatAudit(want))
		}
	}
}

// TestAuditSnapshotRefusesTamperedChain edits an entry inside a snapshot:
// Restore must refuse it and name the entry.
func TestAuditSnapshotRefusesTamperedChain(t *testing.T) {
	d := newFSMDriver(t)
	for i, line := range []string{`claim node=n1 req=r1 user=u1`, `complete node=n1 req=r1 outcome=rejected reason="over the limit"`, `snapshot`} {
		cmd, args := parseCommandLine(t, fmt.Sprint(i), line)
		d.run(scriptCase{raw: line, cmd: cmd, args: args})
	}
	bad := bytes.Replace(d.snap, []byte("over the limit"), []byte("within  limit!"), -1)
	if bytes.Equal(bad, d.snap) {
		t.Fatal("the snapshot does not hold the reason")
	}
	err := NewFSM().Restore(io.NopCloser(bytes.NewReader(bad)))
	if !errors.Is(err, ErrBadCommand) || !strings.Contains(err.Error(), "broken chain at entry 2") {
		t.Fatalf("restore of a tampered audit log: %v", err)
	}
}
