package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/node"
	"github.com/coterie-mpc/coterie/protocol"
)

func nodeSt(id, leader string, owned, sessions int) nodeStatus {
	var st nodeStatus
	st.NodeID, st.Raft.LeaderID, st.Requests = id, leader, owned
	st.Sessions = make([]actors.SessionStatus, sessions)
	return st
}

func TestChooseVictim(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   []nodeStatus
		want string
	}{
		{"most owned", []nodeStatus{nodeSt("n1", "n1", 1, 1), nodeSt("n2", "n1", 3, 3), nodeSt("n3", "n1", 2, 2)}, "n2"},
		{"raft's count, not the sessions", []nodeStatus{nodeSt("n1", "n1", 1, 5), nodeSt("n2", "n1", 2, 0)}, "n2"},
		{"a follower among equals", []nodeStatus{nodeSt("n1", "n1", 2, 2), nodeSt("n2", "n1", 2, 2)}, "n2"},
		{"then more sessions", []nodeStatus{nodeSt("n2", "n1", 2, 1), nodeSt("n3", "n1", 2, 2)}, "n3"},
		{"then by name", []nodeStatus{nodeSt("n3", "n1", 2, 2), nodeSt("n2", "n1", 2, 2)}, "n2"},
		{"none owns anything: a follower", []nodeStatus{nodeSt("n1", "n1", 0, 0), nodeSt("n2", "n1", 0, 0), nodeSt("n3", "n1", 0, 0)}, "n2"},
		{"no status", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := chooseVictim(tc.st); got != tc.want {
				t.Errorf("chooseVictim = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFailoverFigures(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	for _, tc := range []struct {
		d            []time.Duration
		longest, p50 time.Duration
		ok           bool
	}{
		{nil, 0, 0, false},
		{ms(1200), 1200 * time.Millisecond, 1200 * time.Millisecond, true},
		{ms(1100, 1300), 1300 * time.Millisecond, 1100 * time.Millisecond, true},
		{ms(1100, 1200, 2500), 2500 * time.Millisecond, 1200 * time.Millisecond, true},
		{ms(1000, 1100, 1200, 1300), 1300 * time.Millisecond, 1100 * time.Millisecond, true},
	} {
		longest, p50, ok := failoverFigures(tc.d)
		if longest != tc.longest || p50 != tc.p50 || ok != tc.ok {
			t.Errorf("failoverFigures(%v) = %v, %v, %v; want %v, %v, %v", tc.d, longest, p50, ok, tc.longest, tc.p50, tc.ok)
		}
	}
}

// TestFailoverTakeovers follows a killed node's requests through what the
// surviving nodes and the workspace report, and checks which count, from
// when, and the lines shown.
func TestFailoverTakeovers(t *testing.T) {
	kill := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) time.Time { return kill.Add(d) }
	done := func(id string, state protocol.WsRequestState, d time.Duration) *protocol.WsRequest {
		return &protocol.WsRequest{Id: id, State: state, CompletedAt: at(d).UnixNano()}
	}
	const signed, approved = protocol.WsRequestState_WS_REQUEST_STATE_SIGNED, protocol.WsRequestState_WS_REQUEST_STATE_APPROVED
	f := newFailover("n2", kill, 6, []string{"r1", "r2", "r3", "r4", "r5", "r6"})
	var lines []string
	show := func(l []string) { lines = append(lines, l...) }
	// raft's records, as a surviving node answers for them.
	records := map[string]node.RequestListing{}
	claimed := func(by string, d time.Duration) node.RequestListing {
		c := at(d)
		return node.RequestListing{Status: "completed", LastOwner: by, ClaimedAt: &c}
	}
	record := func(id string) (node.RequestListing, bool) { l, ok := records[id]; return l, ok }

	// Not yet released: nothing to show.
	show(f.sawOwned(6, "n1", at(500*time.Millisecond)))
	// r5 finished as n2 died: its last message; until a surviving node
	// shows raft's record of it, it waits.
	show(f.sawRequest(done("r5", signed, 20*time.Millisecond), record))
	records["r5"] = claimed("n2", -time.Second)
	show(f.sawRequest(done("r5", signed, 20*time.Millisecond), record))
	// r6 finished before the kill (the look just before it was stale).
	show(f.sawRequest(done("r6", approved, -time.Millisecond), record))
	// n1 shows r1 at its first step, r4 from before the kill, and a
	// request that was never n2's.
	show(f.sawSessions("n1", []actors.SessionStatus{
		{Request: "r1", Step: "load", Since: at(1200 * time.Millisecond)},
		{Request: "r4", Step: "sign", Since: at(-2 * time.Second)},
		{Request: "r9", Step: "load", Since: at(time.Second)},
	}))
	show(f.sawOwned(0, "n1", at(1300*time.Millisecond)))
	// n3 shows r2; a later look at r1 with a later step changes nothing.
	show(f.sawSessions("n3", []actors.SessionStatus{{Request: "r2", Step: "reserve", Since: at(1400 * time.Millisecond)}}))
	show(f.sawSessions("n1", []actors.SessionStatus{{Request: "r1", Step: "sign", Since: at(1500 * time.Millisecond)}}))
	if f.resolved() {
		t.Fatal("resolved before r3 was taken over")
	}
	// r3 finished between two looks: n3 claimed it, raft says.
	records["r3"] = claimed("n3", 1550*time.Millisecond)
	show(f.sawRequest(done("r3", approved, 1600*time.Millisecond), record))
	show(f.sawRequest(done("r1", signed, 3*time.Second), record))
	show(f.sawRequest(done("r1", signed, 3*time.Second), record)) // shown once
	if !f.resolved() {
		t.Fatal("not resolved after every request was taken over or set aside")
	}
	want := []time.Duration{1200 * time.Millisecond, 1400 * time.Millisecond, 1550 * time.Millisecond}
	if got := f.times(); !slices.Equal(got, want) {
		t.Errorf("times %v, want %v", got, want)
	}
	wantLines := []string{
		"r5 signed: n2 finished it as it died, before any other node could take it",
		"r6 approved: it finished before the kill",
		"r1 taken over by n1 (session at step load), 1.20 s after the kill",
		"r4 was already on n1 before the kill",
		"raft shows n2 owning nothing any more: the leader (n1) released its requests; seen 1.30 s after the kill",
		"r2 taken over by n3 (session at step reserve), 1.40 s after the kill",
		"r3 approved by n3, 1.60 s after the kill",
		"r1 signed by n1, 3.00 s after the kill",
	}
	if !slices.Equal(lines, wantLines) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
	}
}

func TestLedgerProblems(t *testing.T) {
	sig := func(presign string) *protocol.WsDigestSignature {
		return &protocol.WsDigestSignature{PresignId: presign}
	}
	final := map[string]*protocol.WsRequest{
		"r1": {Id: "r1", Signatures: []*protocol.WsDigestSignature{sig("p1"), sig("p2")}},
		"r2": {Id: "r2", Signatures: []*protocol.WsDigestSignature{sig("p3")}},
		"r3": {Id: "r3"},
	}
	for _, tc := range []struct {
		name  string
		reuse bool
		v     *protocol.WsVerifyResponse
		want  []string
	}{
		{"sound", false, &protocol.WsVerifyResponse{SignaturesChecked: 3}, nil},
		{"a presignature twice", true, &protocol.WsVerifyResponse{SignaturesChecked: 3},
			[]string{"presignature p1 signed twice: r1 and r2"}},
		{"a problem", false, &protocol.WsVerifyResponse{SignaturesChecked: 3, Problems: []*protocol.WsVerifyProblem{{RequestId: "r2", Problem: "bad signature"}}},
			[]string{"r2 does not verify: bad signature"}},
		{"a signature unchecked", false, &protocol.WsVerifyResponse{SignaturesChecked: 2},
			[]string{"the requests carry 3 signatures, the workspace checked 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			final["r2"].Signatures[0].PresignId = "p3"
			if tc.reuse {
				final["r2"].Signatures[0].PresignId = "p1"
			}
			if got := ledgerProblems(final, tc.v); !slices.Equal(got, tc.want) {
				t.Errorf("problems %q, want %q", got, tc.want)
			}
		})
	}
}
