package check_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/coterie-mpc/coterie/bench/check"
	"github.com/coterie-mpc/coterie/node"
)

// fakeNode pages its listings one entry at a time, as a node's admin API
// would with limit 1.
type fakeNode struct {
	id       string
	requests []node.RequestListing
	presigs  []node.PresignatureListing
	// stuck makes the request listing answer the same cursor forever.
	stuck bool
}

var _ check.NodeAdmin = (*fakeNode)(nil)

func (f *fakeNode) Status(context.Context) (node.Status, error) {
	return node.Status{NodeID: f.id}, nil
}

func (f *fakeNode) Requests(_ context.Context, after string, _ int) (node.RequestPage, error) {
	i := 0
	for i < len(f.requests) && f.requests[i].ID <= after {
		i++
	}
	var p node.RequestPage
	if i < len(f.requests) {
		p.Requests = f.requests[i : i+1]
		if i+1 < len(f.requests) {
			p.Next = f.requests[i].ID
		}
	}
	if f.stuck {
		p.Next = "r0"
	}
	return p, nil
}

func (f *fakeNode) Presignatures(_ context.Context, afterKey string, afterSeq uint64, _ int) (node.PresignaturePage, error) {
	i := 0
	for i < len(f.presigs) && (f.presigs[i].KeyID < afterKey || f.presigs[i].KeyID == afterKey && f.presigs[i].Seq <= afterSeq) {
		i++
	}
	var p node.PresignaturePage
	if i < len(f.presigs) {
		p.Presignatures = f.presigs[i : i+1]
		p.More = i+1 < len(f.presigs)
	}
	return p, nil
}

// nodeOf answers n's FSM view as a node's admin API lists it.
func nodeOf(n check.Node) *fakeNode {
	f := &fakeNode{id: n.ID}
	for _, r := range n.Requests {
		l := node.RequestListing{ID: r.ID, Status: r.Status, Owner: r.Owner, Attempt: r.Attempt, Outcome: r.Outcome}
		for _, p := range r.Reserved {
			l.Reserved = append(l.Reserved, "ws-1/u/key-02ab/"+p)
		}
		f.requests = append(f.requests, l)
	}
	for i, p := range n.Presignatures {
		f.presigs = append(f.presigs, node.PresignatureListing{KeyID: p.KeyID, ID: p.ID, Seq: uint64(i), Status: p.Status, RequestID: p.RequestID})
	}
	return f
}

func TestFromNode(t *testing.T) {
	recs := clean(t)
	var got []check.Node
	for _, n := range recs.Nodes {
		v, err := check.FromNode(context.Background(), nodeOf(n))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if !reflect.DeepEqual(got, recs.Nodes) {
		t.Fatalf("read\n%+v\nwant\n%+v", got, recs.Nodes)
	}

	// Two replicas that name different owners for one attempt are judged so.
	recs.Nodes[1].Requests[1] = check.NodeRequest{ID: "r2", Status: check.StatusClaimed, Owner: "n2", Attempt: 1}
	recs.Nodes[0].Requests[1] = check.NodeRequest{ID: "r2", Status: check.StatusClaimed, Owner: "n1", Attempt: 1}
	for i, n := range recs.Nodes {
		if recs.Nodes[i], _ = check.FromNode(context.Background(), nodeOf(n)); recs.Nodes[i].ID == "" {
			t.Fatal("not read")
		}
	}
	if rep := check.Check(recs); !reported(rep, want{check.I2, "r2", "attempt 1 is owned by 2 nodes"}) {
		t.Fatalf("two owners not reported:\n%s", rep)
	}
}

func TestFromNodeBadListing(t *testing.T) {
	f := nodeOf(clean(t).Nodes[0])
	f.stuck = true
	if _, err := check.FromNode(context.Background(), f); !errors.Is(err, check.ErrBadRecords) {
		t.Fatalf("got %v, want ErrBadRecords", err)
	}
}

// fakeLog pages a node's log limit entries at a time, as a node's admin
// API would.
type fakeLog struct {
	log   check.NodeLog
	limit int
	// back makes every page start over from the first entry.
	back bool
}

var _ check.NodeLogReader = (*fakeLog)(nil)

func (f *fakeLog) Status(context.Context) (node.Status, error) {
	return node.Status{NodeID: f.log.ID}, nil
}

func (f *fakeLog) Log(_ context.Context, after uint64, _ int) (node.LogPage, error) {
	i := 0
	for !f.back && i < len(f.log.Entries) && f.log.Entries[i].Index <= after {
		i++
	}
	end := min(len(f.log.Entries), i+f.limit)
	return node.LogPage{First: f.log.First, Entries: f.log.Entries[i:end], More: end < len(f.log.Entries)}, nil
}

func TestFromNodeLog(t *testing.T) {
	recs := withLogs(t, cleanLog()[2:], 3)
	for _, limit := range []int{1, 3, 100} {
		got, err := check.FromNodeLog(context.Background(), &fakeLog{log: recs.Logs[1], limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, recs.Logs[1]) {
			t.Fatalf("limit %d: read\n%+v\nwant\n%+v", limit, got, recs.Logs[1])
		}
	}
	if _, err := check.FromNodeLog(context.Background(), &fakeLog{log: recs.Logs[0], limit: 2, back: true}); !errors.Is(err, check.ErrBadRecords) {
		t.Fatalf("a listing that goes back: got %v, want ErrBadRecords", err)
	}
}
