package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/node/console"
	"github.com/coterie-mpc/coterie/protocol"
)

// TestConsoleStateAPI signs a transaction and reads the console's JSON
// from the running node: with the bearer token, or the cookie of a login
// through the form; the cookie opens nothing else; and the JSON holds the
// member, the user, the decision and no secret.
func TestConsoleStateAPI(t *testing.T) {
	f := fixtureNode(t)
	n, cfg, u, admin := f.n, f.cfg, f.u, f.admin
	tokenBytes, err := os.ReadFile(filepath.Join(cfg.DataDir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenBytes))
	base := n.AdminURL()

	// No data without the token: the page is the login form, the JSON a
	// 401 that names no user.
	if code, body := get(t, base+console.PathPage, ""); code != http.StatusOK || !strings.Contains(string(body), `action="/login"`) ||
		strings.Contains(string(body), u.Info.ID) {
		t.Fatalf("page without a session: %d %s", code, body)
	}
	if code, body := get(t, base+console.PathState, ""); code != http.StatusUnauthorized || strings.Contains(string(body), u.Info.ID) {
		t.Fatalf("state without a token: %d %s", code, body)
	}

	r, err := admin.SubmitTransaction(ctxT(t, 10*time.Second), &protocol.WsSubmitTransactionRequest{UserId: u.Info.ID, Transaction: &protocol.WsTransaction{
		Asset: "ETH", Amount: "1", Source: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
		Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "0xabc"}, Amount: "1"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	waitTerminal(t, admin, []string{r.GetId()}, time.Minute)
	waitCompleted(t, n, r.GetId())

	code, body := get(t, base+console.PathState, token)
	var st console.State
	if code != http.StatusOK || json.Unmarshal(body, &st) != nil {
		t.Fatalf("state: %d %s", code, body)
	}
	userID := userRecordID(u.Info.WorkspaceID, u.Info.ID)
	if st.NodeID != "n1" || st.Health.Status != "serving" || len(st.Cluster.Members) != 1 {
		t.Fatalf("state %s", body)
	}
	if m := st.Cluster.Members[0]; m.ID != "n1" || m.Role != RoleLeader || m.Health != "serving" || m.Enclave != "sim" ||
		m.Raft != "self" || m.Term == 0 || m.CommitIndex == 0 || m.AppliedIndex == 0 || m.Capacity == nil {
		t.Fatalf("member %+v", m)
	}
	if len(st.Users) != 1 || st.Users[0].ID != userID || st.Users[0].Pool == nil || st.Users[0].Pool.Depth != 2 ||
		st.Users[0].Outcomes["signed"] != 1 || st.Users[0].PublicKey != u.Info.PublicKey {
		t.Fatalf("users %+v", st.Users)
	}
	if len(st.Decisions) != 1 || st.Decisions[0].ID != r.GetId() || st.Decisions[0].Outcome != "signed" ||
		st.Decisions[0].Node != "n1" || st.Decisions[0].User != userID {
		t.Fatalf("decisions %+v", st.Decisions)
	}
	if st.InFlight.Total != 0 || len(st.InFlight.Requests) != 0 {
		t.Fatalf("in flight %+v", st.InFlight)
	}
	// The cluster holds the sealed share and presignatures: none of it,
	// nor the token, is in the answer.
	for _, rec := range n.cluster.KeyRecords() {
		if len(rec.Sealed) > 16 && strings.Contains(string(body), fmt.Sprintf("%x", rec.Sealed[:16])) {
			t.Fatalf("the state holds the sealed part of %s", rec.ID)
		}
	}
	if strings.Contains(string(body), token) {
		t.Fatal("the state holds the admin token")
	}

	// A login through the form: the cookie reads the console's JSON, and
	// no other endpoint.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(base+console.PathLogin, url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" {
		t.Fatalf("login: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	for path, want := range map[string]int{
		console.PathState: http.StatusOK, PathStatus: http.StatusUnauthorized, PathUsers: http.StatusUnauthorized,
		PathRequests: http.StatusUnauthorized, PathMembers: http.StatusUnauthorized,
	} {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s with the console cookie: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, err = c.PostForm(base+PathLeave, url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !n.Ready() {
		t.Fatalf("leave with the console cookie: %d", resp.StatusCode)
	}
}

// fakeReader is the part of the cluster state consoleInFlight reads.
type fakeReader struct {
	cluster.Reader
	owned     map[string][]string
	requests  map[string]cluster.RequestInfo
	unclaimed []cluster.RequestInfo
}

func (f fakeReader) OwnedBy(node string) []string { return f.owned[node] }

func (f fakeReader) Request(id string) (cluster.RequestInfo, bool) {
	r, ok := f.requests[id]
	return r, ok
}

func (f fakeReader) Unclaimed() []cluster.RequestInfo { return f.unclaimed }

// TestConsoleInFlight lists the unfinished requests oldest first, with
// this node's sessions' steps, and counts what past the bound it leaves
// out.
func TestConsoleInFlight(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	f := fakeReader{owned: map[string][]string{}, requests: map[string]cluster.RequestInfo{}}
	add := func(id, owner string, age time.Duration) {
		f.owned[owner] = append(f.owned[owner], id)
		f.requests[id] = cluster.RequestInfo{ID: id, APIUserID: "ws/u1", Status: cluster.StatusClaimed, Owner: owner,
			Attempt: 1, ClaimedAt: now.Add(-age)}
	}
	add("mine-running", "n1", 3*time.Second)
	add("mine-new", "n1", time.Second)
	add("theirs", "n2", 5*time.Second)
	f.unclaimed = []cluster.RequestInfo{{ID: "released", APIUserID: "ws/u1", Status: cluster.StatusUnclaimed, Attempt: 1,
		ClaimedAt: now.Add(-10 * time.Second)}}
	st := actors.Status{Sessions: []actors.SessionStatus{{Request: "mine-running", Step: "callback"}}}
	members := []MemberView{{ID: "n1"}, {ID: "n2"}}

	got := consoleInFlight(f, members, "n1", st, now)
	want := []console.Request{
		{ID: "released", User: "ws/u1", Stage: "waiting for a claim", Attempt: 1, AgeSeconds: 10},
		{ID: "theirs", User: "ws/u1", Owner: "n2", Stage: "claimed", Attempt: 1, AgeSeconds: 5},
		{ID: "mine-running", User: "ws/u1", Owner: "n1", Stage: "callback", Attempt: 1, AgeSeconds: 3},
		{ID: "mine-new", User: "ws/u1", Owner: "n1", Stage: "starting", Attempt: 1, AgeSeconds: 1},
	}
	if got.Total != 4 || got.More != 0 || fmt.Sprint(got.Requests) != fmt.Sprint(want) {
		t.Fatalf("in flight %+v,\nwant %+v", got, want)
	}

	for i := range maxConsoleInFlight + 7 {
		add(fmt.Sprintf("bulk-%03d", i), "n2", time.Duration(i)*time.Millisecond)
	}
	got = consoleInFlight(f, members, "n1", st, now)
	if got.Total != maxConsoleInFlight+11 || len(got.Requests) != maxConsoleInFlight || got.More != 11 ||
		got.Requests[0].ID != "released" {
		t.Fatalf("%d listed of %d, %d more, first %s", len(got.Requests), got.Total, got.More, got.Requests[0].ID)
	}
}
