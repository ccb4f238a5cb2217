package node

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/protocol"
)

// fakeMembers is a memberSource for views that a single in-process node
// cannot show: other members, unreachable ones, a follower's view.
type fakeMembers struct {
	leader   string
	isLeader bool
	status   cluster.Status
	members  []cluster.Member
	servers  []cluster.Server
	err      error
	silent   map[string]time.Time
	reports  map[string]cluster.Progress
	owned    map[string][]string
}

var _ memberSource = (*fakeMembers)(nil)

func (f *fakeMembers) ClusterID() string                  { return "c-1" }
func (f *fakeMembers) Leader() (string, string)           { return f.leader, "" }
func (f *fakeMembers) IsLeader() bool                     { return f.isLeader }
func (f *fakeMembers) Status() cluster.Status             { return f.status }
func (f *fakeMembers) Members() []cluster.Member          { return f.members }
func (f *fakeMembers) Servers() ([]cluster.Server, error) { return f.servers, f.err }
func (f *fakeMembers) Silent() map[string]time.Time       { return f.silent }
func (f *fakeMembers) Progress() map[string]cluster.Progress {
	return f.reports
}
func (f *fakeMembers) OwnedBy(node string) []string { return f.owned[node] }

func testMember(id, location string) cluster.Member {
	pub, _, _ := ed25519.GenerateKey(nil)
	return cluster.Member{ID: id, Address: id + ":7000", IdentityKey: pub, Location: location,
		Enclave:  enclave.Identity{Kind: enclave.KindSGX, Measurement: []byte{1, 2}, Signer: []byte{3}, Product: []byte{4}, SecurityVersion: 2},
		JoinedAt: time.Date(2025, 3, 1, 10, 0, 0, 123, time.UTC), JoinedWith: "jt-" + id}
}

// TestClusterView checks the roles, liveness, progress and load a view
// shows: on the leader, a member unreachable for hours shows as such with
// the time it went silent, and each member's progress as it last reported
// it; on a follower, only its contact with the leader is known; raft
// servers and members missing from the other side show too.
func TestClusterView(t *testing.T) {
	n1, n2, n3, n4 := testMember("n1", "onprem:dc1"), testMember("n2", "cloud:azure-westeurope"), testMember("n3", ""), testMember("n4", "")
	servers := []cluster.Server{{ID: "n1", Voter: true}, {ID: "n2", Voter: true}, {ID: "n3", Voter: true}, {ID: "n5", Address: "n5:7000"}}
	wentSilent := time.Date(2025, 3, 2, 7, 0, 0, 0, time.UTC)
	contact := time.Date(2025, 3, 2, 10, 0, 0, 0, time.UTC)
	sessions, capacity := 3, 64
	selfLoad := func() (*int, *int) { return &sessions, &capacity }

	leaderView := &fakeMembers{leader: "n1", isLeader: true, members: []cluster.Member{n4, n2, n1, n3}, servers: servers,
		status: cluster.Status{State: "Leader", Term: 7, CommitIndex: 90, AppliedIndex: 89},
		silent: map[string]time.Time{"n3": wentSilent}, owned: map[string][]string{"n1": {"r-1"}, "n3": {"r-2", "r-3"}},
		reports: map[string]cluster.Progress{
			"n2": {Term: 7, CommitIndex: 90, AppliedIndex: 88, ReportedAt: contact},
			"n3": {Term: 7, CommitIndex: 40, AppliedIndex: 40, ReportedAt: wentSilent.Add(-time.Second)},
		}}
	v, err := clusterView(leaderView, "n1", selfLoad)
	if err != nil {
		t.Fatal(err)
	}
	if v.ClusterID != "c-1" || v.ViewOf != "n1" || v.LeaderID != "n1" || !v.LivenessKnown || len(v.Members) != 5 {
		t.Fatalf("view %+v", v)
	}
	got := map[string]MemberView{}
	var order []string
	for _, m := range v.Members {
		got[m.ID] = m
		order = append(order, m.ID)
	}
	if !reflect.DeepEqual(order, []string{"n1", "n2", "n3", "n4", "n5"}) {
		t.Fatalf("members in order %v", order)
	}
	pin := cluster.IdentityPin(n2.IdentityKey)
	joined := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	wantN2 := MemberView{ID: "n2", Address: "n2:7000", Location: "cloud:azure-westeurope",
		Enclave:     EnclaveView{Kind: "sgx", Measurement: "0102", Signer: "03", Product: "04", SecurityVersion: 2},
		IdentityKey: hex.EncodeToString(n2.IdentityKey), IdentityPin: hex.EncodeToString(pin[:]),
		JoinedAt: &joined, JoinedWith: "jt-n2", InMemberTable: true, Role: RoleVoter, Liveness: LivenessReachable,
		Reported: &MemberReport{Term: 7, CommitIndex: 90, AppliedIndex: 88, At: contact}}
	if !reflect.DeepEqual(got["n2"], wantN2) {
		t.Errorf("n2:\n got %+v\nwant %+v", got["n2"], wantN2)
	}
	self := got["n1"]
	if self.Role != RoleLeader || self.Liveness != LivenessSelf || self.Load.RequestsOwned != 1 || *self.Load.Sessions != 3 ||
		*self.Load.Capacity != 64 || self.Raft == nil || self.Raft.Term != 7 || self.Raft.AppliedIndex != 89 {
		t.Errorf("self %+v", self)
	}
	if n3 := got["n3"]; n3.Liveness != LivenessUnreachable || n3.UnreachableSince == nil || !n3.UnreachableSince.Equal(wentSilent) ||
		n3.Load.RequestsOwned != 2 || n3.Load.Sessions != nil || n3.Raft != nil ||
		n3.Reported == nil || n3.Reported.AppliedIndex != 40 || !n3.Reported.At.Equal(wentSilent.Add(-time.Second)) {
		t.Errorf("n3, silent for hours: %+v", n3)
	}
	if self.Reported != nil {
		t.Errorf("the leader reported to itself: %+v", self.Reported)
	}
	if n4 := got["n4"]; n4.Role != RoleNotInRaft || n4.Liveness != LivenessUnknown || n4.Reported != nil {
		t.Errorf("n4, in the member table only: %+v", n4)
	}
	if n5 := got["n5"]; n5.InMemberTable || n5.Role != RoleNonvoter || n5.Address != "n5:7000" || n5.Liveness != LivenessReachable {
		t.Errorf("n5, in raft only: %+v", n5)
	}
	// The JSON carries the time the member went silent, in RFC 3339.
	b, _ := json.Marshal(got["n3"])
	if !strings.Contains(string(b), `"liveness":"unreachable","unreachable_since":"2025-03-02T07:00:00Z"`) {
		t.Errorf("n3 as JSON: %s", b)
	}

	// n2's view: it follows; it knows its last contact with the leader,
	// nothing of the others' liveness.
	followerView := &fakeMembers{leader: "n1", members: []cluster.Member{n1, n2, n3}, servers: servers[:3],
		status: cluster.Status{State: "Follower", LastContact: contact}, silent: map[string]time.Time{}}
	v, err = clusterView(followerView, "n2", selfLoad)
	if err != nil || v.LivenessKnown || v.ViewOf != "n2" {
		t.Fatalf("follower view %+v %v", v, err)
	}
	for _, m := range v.Members {
		switch m.ID {
		case "n1":
			if m.Role != RoleLeader || m.Liveness != LivenessReachable || m.LastContact == nil || !m.LastContact.Equal(contact) {
				t.Errorf("the leader from a follower: %+v", m)
			}
		case "n2":
			if m.Liveness != LivenessSelf || m.Role != RoleVoter || m.Raft.State != "Follower" {
				t.Errorf("self on a follower: %+v", m)
			}
		case "n3":
			if m.Liveness != LivenessUnknown || m.UnreachableSince != nil || m.Reported != nil {
				t.Errorf("another follower from a follower: %+v", m)
			}
		}
	}

	// Without raft's configuration, the member table still shows.
	broken := &fakeMembers{leader: "n1", members: []cluster.Member{n1}, err: errors.New("raft is shut down")}
	v, err = clusterView(broken, "n1", selfLoad)
	if err == nil || len(v.Members) != 1 || v.Members[0].Role != RoleUnknown {
		t.Fatalf("view without raft: %+v %v", v, err)
	}
}

// TestClusterAdminAPI runs the cluster operations against one in-process
// node: every one needs the admin token; the members, a join token, the
// policy shown and replaced; the refusals a single node gives (leave and
// transfer as the only voter, removing itself or an unknown node), each
// explained; a member that never reached raft removed; and the health
// and status of a node whose membership was taken away.
func TestClusterAdminAPI(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Cluster.Location = "onprem:test"
	n := startNode(t, cfg)
	base := "http://" + n.AdminAddr()
	for _, path := range []string{PathStatus, PathMembers, PathPolicy} {
		if code, _ := get(t, base+path, ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d", path, code)
		}
	}
	for _, path := range []string{PathJoinToken, PathRemove, PathTransferLeader, PathLeave} {
		resp, err := http.Post(base+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s without the token: %d", path, resp.StatusCode)
		}
	}
	ac, err := NewAdminClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, time.Minute)

	v, err := ac.Members(ctx)
	if err != nil || v.ViewOf != "n1" || v.LeaderID != "n1" || !v.LivenessKnown || len(v.Members) != 1 {
		t.Fatalf("members %+v %v", v, err)
	}
	self := v.Members[0]
	pin := cluster.IdentityPin(n.identity)
	if self.Role != RoleLeader || self.Liveness != LivenessSelf || self.Location != "onprem:test" || self.Enclave.Kind != "sim" ||
		self.IdentityPin != hex.EncodeToString(pin[:]) || self.JoinedAt == nil || self.JoinedWith != "" ||
		*self.Load.Capacity != cfg.Sessions.Capacity || *self.Load.Sessions != 0 || self.Raft.State != "Leader" {
		t.Fatalf("self %+v", self)
	}

	before := time.Now()
	tok, err := ac.JoinToken(ctx, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ticket, err := cluster.ParseJoinToken(tok.Token)
	if err != nil || ticket.TokenID != tok.TokenID || tok.ClusterID != n.cluster.ClusterID() || tok.Member != "n1" ||
		tok.MemberAddress != n.cluster.Addr() || ticket.MemberPin != pin {
		t.Fatalf("join token %+v (%v)", tok, err)
	}
	if exp := before.Add(30 * time.Minute); tok.ExpiresAt.Before(exp.Add(-2*time.Second)) || tok.ExpiresAt.After(exp.Add(2*time.Second)) {
		t.Fatalf("expires at %v, want about %v", tok.ExpiresAt, exp)
	}
	if _, err := ac.JoinToken(ctx, 30*24*time.Hour); !errors.Is(err, ErrAdminAPI) || !strings.Contains(err.Error(), "lifetime") {
		t.Fatalf("a month-long token: %v", err)
	}
	if code, body := post(t, base+PathJoinToken, ac.token, `{"ttl":"soon"}`); code != http.StatusBadRequest || !strings.Contains(body, "positive duration") {
		t.Fatalf("ttl soon: %d %s", code, body)
	}

	// The default policy admits this node's own enclave; replace it, and
	// refuse policies that do not parse or admit nobody.
	rules, err := ac.Policy(ctx)
	self0 := n.enclave.Self()
	if err != nil || len(rules) != 1 || rules[0].Kind != "sim" || rules[0].Measurement != hex.EncodeToString(self0.Measurement) {
		t.Fatalf("policy %+v %v", rules, err)
	}
	want := []PolicyRule{{Kind: "sim", Measurement: "abcd"}, {Kind: "sgx", Signer: "0102", Product: "03", MinSecurityVersion: 2},
		{Kind: "confidential-space", Measurement: strings.Repeat("c5", 32), Issuer: "https://attest.example", HardwareModels: []string{"GCP_INTEL_TDX"}}}
	if got, err := ac.SetPolicy(ctx, want); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("set policy: %+v %v", got, err)
	}
	if got, _ := ac.Policy(ctx); !reflect.DeepEqual(got, want) {
		t.Fatalf("policy after set: %+v", got)
	}
	for _, bad := range [][]PolicyRule{nil, {{Kind: "sgx", Signer: "zz"}}, {{Kind: "tdx", Measurement: "ab"}}, {{Kind: "sgx", Signer: "01"}},
		{{Kind: "confidential-space", Measurement: strings.Repeat("c5", 32), Issuer: "http://attest.example"}}} {
		if _, err := ac.SetPolicy(ctx, bad); !errors.Is(err, ErrAdminAPI) || !strings.Contains(err.Error(), "polic") {
			t.Errorf("policy %+v: %v", bad, err)
		}
	}
	if got, _ := ac.Policy(ctx); !reflect.DeepEqual(got, want) {
		t.Fatalf("a refused policy changed it: %+v", got)
	}

	// What a single node refuses, and why.
	if err := ac.RemoveMember(ctx, "n1"); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "cluster leave") {
		t.Errorf("remove self: %v", err)
	}
	if err := ac.RemoveMember(ctx, "n9"); !errors.Is(err, cluster.ErrMember) || !strings.Contains(err.Error(), `"n9" is not a member`) {
		t.Errorf("remove an unknown node: %v", err)
	}
	if _, err := ac.TransferLeadership(ctx); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "only voter") {
		t.Errorf("transfer as the only voter: %v", err)
	}
	if _, err := ac.Leave(ctx); !errors.Is(err, cluster.ErrMember) || !strings.Contains(err.Error(), "last voter") {
		t.Errorf("leave as the last voter: %v", err)
	}
	if n.Phase() != PhaseServing {
		t.Fatalf("a refused leave left the node %s", n.Phase())
	}

	// A member that joined the table but never raft shows as such, and
	// can be removed.
	ghostKey, _, _ := ed25519.GenerateKey(nil)
	ghost := cluster.Member{ID: "ghost", Address: "127.0.0.1:1", IdentityKey: ghostKey, Enclave: self0, Location: "onprem:gone", JoinedWith: tok.TokenID}
	if _, err := n.cluster.Propose(ctx, cluster.MemberAddedCommand(ghost)); err != nil {
		t.Fatal(err)
	}
	st, err := ac.Status(ctx)
	if err != nil || len(st.Cluster.Members) != 2 || st.Cluster.Members[0].ID != "ghost" || st.Cluster.Members[0].Role != RoleNotInRaft ||
		st.Cluster.Members[0].Location != "onprem:gone" || st.Phase != "serving" || st.Health.Status != "serving" {
		t.Fatalf("status with a ghost %+v %v", st, err)
	}
	if err := ac.RemoveMember(ctx, "ghost"); err != nil {
		t.Fatal(err)
	}
	if v, _ := ac.Members(ctx); len(v.Members) != 1 {
		t.Fatalf("after remove: %+v", v.Members)
	}

	// Taken out of the member table behind its back, the node reports
	// 501 and says why. The ghost's removal revoked its token: it comes
	// back with a new one.
	tok2, err := ac.JoinToken(ctx, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ghost.JoinedWith = tok2.TokenID
	if _, err := n.cluster.Propose(ctx, cluster.MemberAddedCommand(ghost)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cluster.Propose(ctx, cluster.MemberRemovedCommand("n1")); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, base+PathHealth, "")
	var h Health
	if err := json.Unmarshal(body, &h); err != nil || code != HealthNotJoined || h.Status != "not_member" {
		t.Fatalf("health of a removed node: %d %s", code, body)
	}

	// A broken invariant outranks it, and stays.
	n.stopSigning("presignature p-1 reserved twice")
	n.stopSigning("second reason")
	code, body = get(t, base+PathHealth, "")
	if code != HealthUnavailable || !strings.Contains(string(body), "signing stopped: presignature p-1 reserved twice") {
		t.Fatalf("health after stopSigning: %d %s", code, body)
	}
}

func post(t testing.TB, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestClusterListings lists the requests and presignatures of the FSM a
// page at a time, behind the admin token, without the sealed shares.
func TestClusterListings(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	n := startNode(t, cfg)
	ctx := ctxT(t, time.Minute)
	base := "http://" + n.AdminAddr()
	for _, path := range []string{PathRequests, PathPresignatures, PathLog} {
		if code, _ := get(t, base+path, ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d", path, code)
		}
	}
	ps := []cluster.SealedPresignature{{ID: "p1", OriginSeq: 1, Sealed: []byte("sealed-1")},
		{ID: "p2", OriginSeq: 2, Sealed: []byte("sealed-2")}, {ID: "p3", OriginSeq: 3, Sealed: []byte("sealed-3")}}
	cmds := []*protocol.ClusterCommand{
		cluster.PresignaturesAddedCommand("k", "", ps),
		cluster.PresignaturesAddedCommand("j", "", []cluster.SealedPresignature{{ID: "q1", OriginSeq: 1, Sealed: []byte("sealed-q")}}),
		cluster.ClaimCommand("r-a", "u"), cluster.ClaimCommand("r-b", "u"), cluster.ClaimCommand("r-c", "u"),
		cluster.ReserveCommand("r-a", cluster.PresignatureRef{KeyID: "k", ID: "p2"}),
		cluster.CompleteCommand("r-a", cluster.OutcomeSigned, ""),
		cluster.ReserveCommand("r-b", cluster.PresignatureRef{KeyID: "k", ID: "p1"}),
	}
	for _, c := range cmds {
		if _, err := n.cluster.Propose(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	ac, err := NewAdminClient(cfg)
	if err != nil {
		t.Fatal(err)
	}

	var reqs []RequestListing
	for after, pages := "", 0; ; pages++ {
		p, err := ac.Requests(ctx, after, 2)
		if err != nil || pages > 2 {
			t.Fatalf("page %d: %v", pages, err)
		}
		reqs = append(reqs, p.Requests...)
		if after = p.Next; after == "" {
			break
		}
	}
	got := fmt.Sprint(reqs)
	if len(reqs) != 3 || reqs[0].ID != "r-a" || reqs[0].Status != "completed" || reqs[0].Outcome != "signed" ||
		!slices.Equal(reqs[0].Reserved, []string{"k/p2"}) || reqs[1].Owner != "n1" || !slices.Equal(reqs[1].Reserved, []string{"k/p1"}) ||
		reqs[2].ID != "r-c" || reqs[2].Status != "claimed" || reqs[2].Attempt != 1 {
		t.Fatalf("requests %s", got)
	}

	var pres []PresignatureListing
	var key string
	var seq uint64
	for pages := 0; ; pages++ {
		p, err := ac.Presignatures(ctx, key, seq, 3)
		if err != nil || pages > 1 {
			t.Fatalf("page %d: %v", pages, err)
		}
		pres = append(pres, p.Presignatures...)
		if !p.More {
			break
		}
		last := p.Presignatures[len(p.Presignatures)-1]
		key, seq = last.KeyID, last.Seq
	}
	want := []PresignatureListing{
		{KeyID: "j", ID: "q1", Seq: 0, Origin: "n1", Status: "available"},
		{KeyID: "k", ID: "p1", Seq: 0, Origin: "n1", Status: "reserved", RequestID: "r-b"},
		{KeyID: "k", ID: "p2", Seq: 1, Origin: "n1", Status: "used", RequestID: "r-a"},
		{KeyID: "k", ID: "p3", Seq: 2, Origin: "n1", Status: "available"},
	}
	if !reflect.DeepEqual(pres, want) {
		t.Fatalf("presignatures\n%+v\nwant\n%+v", pres, want)
	}
	code, body := get(t, base+PathPresignatures, ac.token)
	if code != http.StatusOK || strings.Contains(string(body), "sealed") || strings.Contains(string(body), base64.StdEncoding.EncodeToString([]byte("sealed-3"))) {
		t.Fatalf("the listing shows a sealed share: %d %s", code, body)
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x", "?after_seq=-1"} {
		if code, body := get(t, base+PathPresignatures+q, ac.token); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, code, body)
		}
	}
	if code, _ := get(t, base+PathRequests+"?limit=x", ac.token); code != http.StatusBadRequest {
		t.Errorf("requests ?limit=x: %d", code)
	}

	// The raft log, a page at a time: the commands above in order, after
	// what the node committed to start.
	var entries []cluster.LogEntry
	var after uint64
	for pages := 0; ; pages++ {
		p, err := ac.Log(ctx, after, 3)
		if err != nil || pages > 100 {
			t.Fatalf("log page %d: %v", pages, err)
		}
		if p.First != 1 {
			t.Errorf("first index %d, want 1", p.First)
		}
		entries = append(entries, p.Entries...)
		if !p.More {
			break
		}
		after = p.Entries[len(p.Entries)-1].Index
	}
	var kinds []string
	for i, e := range entries {
		if e.Index != uint64(i+1) {
			t.Fatalf("entry %d has index %d", i+1, e.Index)
		}
		if e.Node == "n1" && e.Type == cluster.LogTypeCommand && e.RequestID+e.KeyID != "" {
			kinds = append(kinds, e.Kind+" "+e.RequestID+" "+e.KeyID+" "+strings.Join(e.Presignatures, ",")+" "+e.Outcome)
		}
	}
	wantKinds := []string{"presignatures_added  k p1,p2,p3 ", "presignatures_added  j q1 ", "claim r-a   ", "claim r-b   ", "claim r-c   ",
		"reserve r-a k p2 ", "complete r-a   signed", "reserve r-b k p1 "}
	if len(kinds) < len(wantKinds) || !slices.Equal(kinds[len(kinds)-len(wantKinds):], wantKinds) {
		t.Fatalf("log commands\n%q\nwant them to end with\n%q", kinds, wantKinds)
	}
	code, body = get(t, base+PathLog, ac.token)
	if code != http.StatusOK || strings.Contains(string(body), "sealed") || strings.Contains(string(body), base64.StdEncoding.EncodeToString([]byte("sealed-3"))) {
		t.Fatalf("the log shows a sealed share: %d %s", code, body)
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?after=x", "?after=-1"} {
		if code, body := get(t, base+PathLog+q, ac.token); code != http.StatusBadRequest {
			t.Errorf("log %s: %d %s", q, code, body)
		}
	}
}
