package check_test

import (
	"context"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/bench/check"
	"github.com/coterie-mpc/coterie/cluster/audit"
	"github.com/coterie-mpc/coterie/node"
)

// auditOf returns a node's audit log of n entries after anchor seq from.
func auditOf(id string, from, n int) check.NodeAudit {
	var c audit.Chain
	for i := range n + from {
		c.Append(audit.Entry{Index: uint64(i + 1), Time: time.Unix(int64(i), 0), Kind: audit.KindClaimed, Node: "n1", Request: "r1"})
	}
	c.TrimTo(n)
	return check.NodeAudit{ID: id, Anchor: c.Anchor(), Head: c.Head(), Entries: c.Entries(0, 0)}
}

// auditNode answers a node's audit log a page of two entries at a time.
type auditNode struct{ a check.NodeAudit }

func (f auditNode) Status(context.Context) (node.Status, error) {
	return node.Status{NodeID: f.a.ID}, nil
}

func (f auditNode) Audit(_ context.Context, q node.AuditQuery) (node.AuditListing, error) {
	l := node.AuditListing{Anchor: f.a.Anchor, Head: f.a.Head}
	for _, e := range f.a.Entries {
		if e.Seq >= q.From && len(l.Entries) < 2 {
			l.Entries = append(l.Entries, e)
		}
	}
	return l, nil
}

func TestCheckAudits(t *testing.T) {
	n1, n2 := auditOf("n1", 0, 7), auditOf("n2", 3, 4)
	var read []check.NodeAudit
	for _, a := range []check.NodeAudit{n1, n2} {
		got, err := check.FromNodeAudit(context.Background(), auditNode{a})
		if err != nil || len(got.Entries) != len(a.Entries) || got.Head != a.Head {
			t.Fatalf("read %s: %v, %d entries", a.ID, err, len(got.Entries))
		}
		read = append(read, got)
	}
	recs := clean(t)
	recs.Audits = read
	rep := check.Check(recs)
	if !rep.OK() || rep.AuditsRead != 2 || rep.AuditEntries != 11 {
		t.Fatalf("clean audit logs: %s (%d read, %d entries)", rep, rep.AuditsRead, rep.AuditEntries)
	}

	// A changed entry breaks the node's chain.
	bad := auditOf("n2", 3, 4)
	bad.Entries[1].Outcome = "signed"
	recs.Audits = []check.NodeAudit{n1, bad}
	if rep := check.Check(recs); !reported(rep, want{check.InvAudit, "-", "node n2: audit: broken chain at entry 5"}) {
		t.Fatalf("a changed entry:\n%s", rep)
	}
	// A node whose whole chain differs (rehashed) verifies alone, and
	// disagrees with the other node.
	other := auditOf("n2", 3, 4)
	var c audit.Chain
	for _, e := range other.Entries {
		e.Reason = "rewritten"
		c.Append(e)
	}
	c.TrimTo(4)
	other = check.NodeAudit{ID: "n2", Anchor: c.Anchor(), Head: c.Head(), Entries: c.Entries(0, 0)}
	recs.Audits = []check.NodeAudit{n1, other}
	if rep := check.Check(recs); rep.OK() {
		t.Fatalf("a rewritten chain passed:\n%s", rep)
	}
}
