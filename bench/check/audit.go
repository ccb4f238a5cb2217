package check

import (
	"context"
	"fmt"

	"github.com/coterie-mpc/coterie/cluster/audit"
	"github.com/coterie-mpc/coterie/node"
)

// NodeAudit is one node's audit log as it retains it: what `coterie node
// audit --verify` checks.
type NodeAudit struct {
	ID      string
	Anchor  audit.Anchor
	Head    audit.Anchor
	Entries []audit.Entry
}

// NodeAuditReader is the part of a node's admin API that FromNodeAudit
// reads; *node.AdminClient implements it. Its calls may run concurrently.
type NodeAuditReader interface {
	Status(ctx context.Context) (node.Status, error)
	Audit(ctx context.Context, q node.AuditQuery) (node.AuditListing, error)
}

var _ NodeAuditReader = (*node.AdminClient)(nil)

// FromNodeAudit reads every audit entry one node retains, from its anchor
// up to the head it named first.
func FromNodeAudit(ctx context.Context, admin NodeAuditReader) (NodeAudit, error) {
	st, err := admin.Status(ctx)
	if err != nil {
		return NodeAudit{}, fmt.Errorf("check: node status: %w", err)
	}
	l, err := admin.Audit(ctx, node.AuditQuery{})
	if err != nil {
		return NodeAudit{}, fmt.Errorf("check: node %s audit log: %w", st.NodeID, err)
	}
	out := NodeAudit{ID: st.NodeID, Anchor: l.Anchor, Head: l.Head, Entries: l.Entries}
	for pages := 1; len(l.Entries) > 0 && out.Entries[len(out.Entries)-1].Seq < out.Head.Seq; pages++ {
		if pages == maxPages {
			return out, fmt.Errorf("%w: node %s lists its audit log past %d pages", ErrBadRecords, out.ID, maxPages)
		}
		next := out.Entries[len(out.Entries)-1].Seq + 1
		if l, err = admin.Audit(ctx, node.AuditQuery{From: next}); err != nil {
			return out, fmt.Errorf("check: node %s audit log: %w", out.ID, err)
		}
		if l.Anchor.Seq >= next {
			return out, fmt.Errorf("%w: node %s's audit log was truncated while it was read", ErrBadRecords, out.ID)
		}
		out.Entries = append(out.Entries, l.Entries...)
	}
	for n := len(out.Entries); n > 0 && out.Entries[n-1].Seq > out.Head.Seq; n-- {
		out.Entries = out.Entries[:n-1]
	}
	return out, nil
}

// checkAudits judges InvAudit: each node's chain verifies from its anchor
// to its head, and every two nodes hold the same hash at every entry both
// retain (the FSM derives the chain from the raft log, so replicas agree).
func checkAudits(rep *Report, audits []NodeAudit) {
	hashes := map[uint64]struct {
		node string
		hash audit.Digest
	}{}
	for _, a := range audits {
		rep.AuditEntries += len(a.Entries)
		if err := audit.VerifyHead(a.Anchor, a.Entries, a.Head); err != nil {
			rep.add(InvAudit, "-", "node %s: %v", a.ID, err)
			continue
		}
		for _, e := range a.Entries {
			seen, ok := hashes[e.Seq]
			switch {
			case !ok:
				hashes[e.Seq] = struct {
					node string
					hash audit.Digest
				}{a.ID, e.Hash}
			case seen.hash != e.Hash:
				rep.add(InvAudit, e.Request, "entry %d differs between nodes %s and %s", e.Seq, seen.node, a.ID)
			}
		}
	}
}
