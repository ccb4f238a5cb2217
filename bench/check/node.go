package check

import (
	"context"
	"fmt"
	"strings"

	"github.com/coterie-mpc/coterie/node"
)

// NodeAdmin is the part of a node's admin API that FromNode reads;
// *node.AdminClient implements it. Its calls may run concurrently.
type NodeAdmin interface {
	Status(ctx context.Context) (node.Status, error)
	Requests(ctx context.Context, after string, limit int) (node.RequestPage, error)
	Presignatures(ctx context.Context, afterKey string, afterSeq uint64, limit int) (node.PresignaturePage, error)
}

var _ NodeAdmin = (*node.AdminClient)(nil)

// FromNode reads one node's view of the cluster FSM: every request and
// presignature it retains. Read every node, not only the leader: a
// replica that diverged is what I1 and I2 look for.
func FromNode(ctx context.Context, admin NodeAdmin) (Node, error) {
	st, err := admin.Status(ctx)
	if err != nil {
		return Node{}, fmt.Errorf("check: node status: %w", err)
	}
	out := Node{ID: st.NodeID}
	after := ""
	for pages := 0; ; pages++ {
		if pages == maxPages {
			return out, fmt.Errorf("%w: node %s lists requests past %d pages", ErrBadRecords, out.ID, maxPages)
		}
		p, err := admin.Requests(ctx, after, 0)
		if err != nil {
			return out, fmt.Errorf("check: node %s requests: %w", out.ID, err)
		}
		for _, r := range p.Requests {
			nr := NodeRequest{ID: r.ID, Status: r.Status, Owner: r.Owner, Attempt: r.Attempt, Outcome: r.Outcome}
			for _, ref := range r.Reserved {
				// A reference is key/id; key ids hold slashes, presignature
				// ids (hex) do not.
				nr.Reserved = append(nr.Reserved, ref[strings.LastIndexByte(ref, '/')+1:])
			}
			out.Requests = append(out.Requests, nr)
		}
		if p.Next == "" {
			break
		}
		if p.Next <= after {
			return out, fmt.Errorf("%w: node %s's request listing went back from %q to %q", ErrBadRecords, out.ID, after, p.Next)
		}
		after = p.Next
	}
	var key string
	var seq uint64
	for pages := 0; ; pages++ {
		if pages == maxPages {
			return out, fmt.Errorf("%w: node %s lists presignatures past %d pages", ErrBadRecords, out.ID, maxPages)
		}
		p, err := admin.Presignatures(ctx, key, seq, 0)
		if err != nil {
			return out, fmt.Errorf("check: node %s presignatures: %w", out.ID, err)
		}
		for _, ps := range p.Presignatures {
			out.Presignatures = append(out.Presignatures, NodePresignature{KeyID: ps.KeyID, ID: ps.ID, Status: ps.Status, RequestID: ps.RequestID})
		}
		if !p.More {
			break
		}
		if len(p.Presignatures) == 0 {
			return out, fmt.Errorf("%w: node %s's presignature listing has more but gave none", ErrBadRecords, out.ID)
		}
		last := p.Presignatures[len(p.Presignatures)-1]
		if last.KeyID < key || (last.KeyID == key && last.Seq <= seq) {
			return out, fmt.Errorf("%w: node %s's presignature listing went back", ErrBadRecords, out.ID)
		}
		key, seq = last.KeyID, last.Seq
	}
	return out, nil
}

// NodeLogReader is the part of a node's admin API that FromNodeLog reads;
// *node.AdminClient implements it. Its calls may run concurrently.
type NodeLogReader interface {
	Status(ctx context.Context) (node.Status, error)
	Log(ctx context.Context, after uint64, limit int) (node.LogPage, error)
}

var _ NodeLogReader = (*node.AdminClient)(nil)

// FromNodeLog reads one node's committed raft log, every entry it still
// holds, a page at a time. Read every node's: Check compares them index by
// index.
func FromNodeLog(ctx context.Context, admin NodeLogReader) (NodeLog, error) {
	st, err := admin.Status(ctx)
	if err != nil {
		return NodeLog{}, fmt.Errorf("check: node status: %w", err)
	}
	out := NodeLog{ID: st.NodeID}
	var after uint64
	for pages := 0; ; pages++ {
		if pages == maxPages {
			return out, fmt.Errorf("%w: node %s lists its log past %d pages", ErrBadRecords, out.ID, maxPages)
		}
		p, err := admin.Log(ctx, after, 0)
		if err != nil {
			return out, fmt.Errorf("check: node %s log: %w", out.ID, err)
		}
		if pages == 0 {
			out.First = p.First
		}
		for _, e := range p.Entries {
			if e.Index <= after {
				return out, fmt.Errorf("%w: node %s's log listing went back from index %d to %d", ErrBadRecords, out.ID, after, e.Index)
			}
			after = e.Index
			out.Entries = append(out.Entries, e)
		}
		if !p.More {
			break
		}
		if len(p.Entries) == 0 {
			return out, fmt.Errorf("%w: node %s's log listing has more but gave none", ErrBadRecords, out.ID)
		}
	}
	return out, nil
}
