package check_test

import (
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/bench/check"
	"github.com/coterie-mpc/coterie/cluster"
)

// cmd is a command entry of a test log, proposed by node.
func cmd(node, kind string, fields func(*check.LogEntry)) check.LogEntry {
	e := check.LogEntry{Term: 2, Type: cluster.LogTypeCommand, Kind: kind, Node: node}
	if fields != nil {
		fields(&e)
	}
	return e
}

func claim(node, request string) check.LogEntry {
	return cmd(node, cluster.KindClaim, func(e *check.LogEntry) { e.RequestID, e.APIUserID = request, "u" })
}

// reserve is a reserve of presignature p of key k; an empty p lets the FSM
// pick.
func reserve(node, request, p string) check.LogEntry {
	return cmd(node, cluster.KindReserve, func(e *check.LogEntry) {
		e.RequestID, e.KeyID = request, "k"
		if p != "" {
			e.Presignatures = []string{p}
		}
	})
}

func complete(node, request, outcome string) check.LogEntry {
	return cmd(node, cluster.KindComplete, func(e *check.LogEntry) { e.RequestID, e.Outcome = request, outcome })
}

func release(node string) check.LogEntry {
	return cmd("n2", cluster.KindRelease, func(e *check.LogEntry) { e.ReleasedNode = node })
}

// cleanLog is a log that leads to clean's FSM views: r1 signed by n1 with
// p1 and the FSM's pick (p2), after a refused claim by n2; r4 claimed by
// n1, released, and failed by n2.
func cleanLog() []check.LogEntry {
	return []check.LogEntry{
		{Term: 1, Type: cluster.LogTypeConfiguration},
		{Term: 2, Type: cluster.LogTypeNoop},
		cmd("n1", cluster.KindPresignaturesAdded, func(e *check.LogEntry) { e.KeyID, e.Presignatures = "k", []string{"p1", "p2", "p3"} }),
		claim("n1", "r1"), reserve("n1", "r1", "p1"), reserve("n1", "r1", ""), claim("n2", "r1"), complete("n1", "r1", "signed"),
		claim("n2", "r2"), complete("n2", "r2", "approved"),
		claim("n2", "r3"), complete("n2", "r3", "rejected"),
		claim("n1", "r4"), release("n1"), claim("n2", "r4"), complete("n2", "r4", "failed"),
	}
}

// withLogs returns clean's records with every node holding log, numbered
// from first.
func withLogs(t *testing.T, log []check.LogEntry, first uint64) check.Records {
	recs := clean(t)
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range log {
		log[i].Index = first + uint64(i)
		if log[i].Type == cluster.LogTypeCommand {
			log[i].ProposedAt = at.Add(time.Duration(i) * time.Millisecond)
		}
	}
	for _, n := range recs.Nodes {
		recs.Logs = append(recs.Logs, check.NodeLog{ID: n.ID, First: first, Entries: append([]check.LogEntry(nil), log...)})
	}
	return recs
}

func TestCheckLogClean(t *testing.T) {
	rep := check.Check(withLogs(t, cleanLog(), 1))
	if !rep.OK() {
		t.Fatalf("a clean log reported:\n%s", rep)
	}
	if rep.LogsRead != 2 || rep.LogEntries != len(cleanLog()) || rep.LogJudged != 2 || rep.LogNotJudged != 0 {
		t.Errorf("counts: %+v", rep)
	}
	if !strings.Contains(rep.String(), "16 raft log entries from 2 nodes (2 signatures' reservations judged)") {
		t.Errorf("the report does not count the log:\n%s", rep)
	}
	// The release narrowed to r4's user, as n1's own hand-back, is as
	// clean. (One another node proposes is refused by the FSM and ignored
	// by the replay: "a release narrowed to another user" below.)
	narrowed := cleanLog()
	for i := range narrowed {
		if narrowed[i].Kind == cluster.KindRelease {
			narrowed[i].APIUserID, narrowed[i].Node = "u", "n1"
		}
	}
	if rep := check.Check(withLogs(t, narrowed, 1)); !rep.OK() {
		t.Errorf("n1's hand-back of r4's user reported:\n%s", rep)
	}
}

func TestCheckLogDoctored(t *testing.T) {
	// at returns the index in cleanLog of the entry that matches.
	at := func(log []check.LogEntry, kind, node, request string) int {
		for i, e := range log {
			if e.Kind == kind && e.Node == node && e.RequestID == request {
				return i
			}
		}
		panic("no such entry")
	}
	tests := []struct {
		name string
		// doctor changes the log before it is numbered; noViews drops the
		// nodes' FSM views, to look at I6 alone.
		doctor  func(log []check.LogEntry) []check.LogEntry
		after   func(r *check.Records)
		noViews bool
		want    []want
	}{{
		name: "two nodes disagree at one index",
		after: func(r *check.Records) {
			e := &r.Logs[1].Entries[at(cleanLog(), cluster.KindReserve, "n1", "r1")]
			e.Presignatures = []string{"p3"}
		},
		want: []want{{check.InvLog, "r1", "index 5: node n1 holds term 2 command reserve by n1 request r1 key k presignatures p1, node n2 holds term 2 command reserve by n1 request r1 key k presignatures p3"}},
	}, {
		name: "a release lost from the log",
		doctor: func(log []check.LogEntry) []check.LogEntry {
			i := at(log, cluster.KindRelease, "n2", "")
			return append(log[:i], log[i+1:]...)
		},
		want: []want{
			{check.I2, "r4", `node n1's FSM lists it completed owner "" attempt 2 reserved [], its raft log replays to claimed owner "n1" attempt 1 reserved []`},
			{check.I2, "r4", `node n2's FSM lists it completed owner "" attempt 2`},
		},
	}, {
		// A node's hand-back of another user's requests leaves r4 its own.
		name: "a release narrowed to another user",
		doctor: func(log []check.LogEntry) []check.LogEntry {
			log[at(log, cluster.KindRelease, "n2", "")].APIUserID = "v"
			return log
		},
		want: []want{
			{check.I2, "r4", `node n1's FSM lists it completed owner "" attempt 2 reserved [], its raft log replays to claimed owner "n1" attempt 1 reserved []`},
			{check.I2, "r4", `node n2's FSM lists it completed owner "" attempt 2`},
		},
	}, {
		name:    "a presignature reserved after its node was released",
		noViews: true,
		doctor: func(log []check.LogEntry) []check.LogEntry {
			// n1 reserves p1, is released, reserves p2 all the same; n2
			// claims r1 again and completes it.
			i := at(log, cluster.KindReserve, "n1", "r1") + 1
			out := append([]check.LogEntry(nil), log[:i]...)
			out = append(out, release("n1"), reserve("n1", "r1", "p2"), claim("n2", "r1"), complete("n2", "r1", "signed"))
			return append(out, log[at(log, cluster.KindClaim, "n2", "r2"):]...)
		},
		want: []want{{check.I6, "r1", "digest 1's signature used presignature p2, not reserved for the request by its owner: a reserve for request r1 by n1 at index 7 did not hold: n1 was not its owner: the request was unclaimed"}},
	}, {
		name:    "a presignature reserved for another request",
		noViews: true,
		doctor: func(log []check.LogEntry) []check.LogEntry {
			i := at(log, cluster.KindClaim, "n2", "r4") + 1
			out := append([]check.LogEntry(nil), log[:i]...)
			out = append(out, reserve("n2", "r4", "p3"))
			return append(out, log[i:]...)
		},
		after: func(r *check.Records) { r.Requests[0].Signatures[1].PresignID = "p3" },
		want:  []want{{check.I6, "r1", "digest 1's signature used presignature p3, not reserved for the request by its owner: the log reserved it for request r4 at index 16"}},
	}, {
		name:    "a presignature the log never added",
		noViews: true,
		after:   func(r *check.Records) { r.Requests[0].Signatures[0].PresignID = "p9" },
		want:    []want{{check.I6, "r1", "digest 0's signature used presignature p9, not reserved for the request by its owner: the log never reserved it"}},
	}, {
		name: "a claim the log never made",
		after: func(r *check.Records) {
			r.Nodes[0].Requests = append(r.Nodes[0].Requests, check.NodeRequest{ID: "r9", Status: check.StatusClaimed, Owner: "n1", Attempt: 1})
		},
		want: []want{{check.I2, "r9", "node n1's FSM lists it claimed, but the raft log never claimed it"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := cleanLog()
			if tt.doctor != nil {
				log = tt.doctor(log)
			}
			recs := withLogs(t, log, 1)
			if tt.noViews {
				recs.Nodes = nil
			}
			if tt.after != nil {
				tt.after(&recs)
			}
			rep := check.Check(recs)
			wantViolations(t, rep, tt.want)
		})
	}
}

// TestCheckLogCompacted: a log that starts after index 1 may miss the
// start of any request, so I6 and the replayed owners are not judged from
// it, and the report says so; the logs' agreement still is.
func TestCheckLogCompacted(t *testing.T) {
	recs := withLogs(t, cleanLog()[4:], 5)
	recs.Requests[0].Signatures[0].PresignID = "p9"
	rep := check.Check(recs)
	if !rep.OK() || rep.LogNotJudged != 1 || !strings.Contains(rep.String(), "compacted: 1 signed requests not judged") {
		t.Fatalf("a compacted log:\n%s", rep)
	}
	recs.Logs[0].Entries[0].Term = 3
	if rep := check.Check(recs); !reported(rep, want{check.InvLog, "r1", "index 5: node n1 holds term 3"}) {
		t.Fatalf("disagreement in a compacted log not reported:\n%s", rep)
	}
}
