package node

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
)

// refHandler is the reference callback server on loopback, counting the
// requests it answers.
type refHandler struct {
	url, keyFile string
	pem          []byte
	asked        atomic.Int32
}

// startRefHandler serves policy; its public key is in dir/name.pem.
func startRefHandler(t *testing.T, dir, name string, policy *callback.Policy) *refHandler {
	t.Helper()
	key, err := callback.GenerateKey(callback.KeyTypeEC)
	if err != nil {
		t.Fatal(err)
	}
	h := &refHandler{keyFile: filepath.Join(dir, name+".pem")}
	if h.pem, err = callback.MarshalPublicKeyPEM(key.Public()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.keyFile, h.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	scfg := callback.DefaultServerConfig()
	scfg.Policy, scfg.Key, scfg.InsecureSkipRequestVerify = policy, key, true
	scfg.Logger = testLogger(t, slog.LevelInfo)
	srv, err := callback.NewServer(scfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.asked.Add(1)
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	h.url = hs.URL
	return h
}

// rejectAll is a policy that rejects every config change.
var rejectAll = &callback.Policy{ConfigChanges: map[string]string{"*": "REJECT"}}

// TestUserCallbackRouting: a request of a user with a handler of its own
// is asked of that handler, a request of any other user of the cluster's;
// setting and clearing a user's handler applies to the next request with
// no restart, and the record survives a snapshot and a restart.
func TestUserCallbackRouting(t *testing.T) {
	dir := t.TempDir()
	_, admin := testWorkspace(t, filepath.Join(dir, "ws"))
	clusterH := startRefHandler(t, dir, "cluster", &callback.Policy{})
	aliceH := startRefHandler(t, dir, "alice", rejectAll)
	cfg := testConfig(t, dir)
	cfg.Callback.URL, cfg.Callback.HandlerPublicKey = clusterH.url, clusterH.keyFile
	n := startNode(t, cfg)
	ac, err := NewAdminClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 2*time.Minute)
	pair := func() UserInfo {
		_, tok := createUser(t, admin, protocol.WsRole_WS_ROLE_APPROVER)
		u, err := n.Pair(ctx, PairRequest{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	alice, bob := pair(), pair()
	aliceRec := userRecordID(alice.WorkspaceID, alice.ID)

	l, err := ac.SetUserCallback(ctx, alice.ID, aliceH.url, aliceH.pem)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Users) != 1 || l.Users[0].User != aliceRec || l.Users[0].URL != aliceH.url || l.URL != clusterH.url {
		t.Fatalf("listing after set: %+v", l)
	}

	// ask submits a config change of user and returns its final state,
	// and how many requests each handler answered meanwhile.
	ask := func(user string) (protocol.WsRequestState, int32, int32) {
		t.Helper()
		c0, a0 := clusterH.asked.Load(), aliceH.asked.Load()
		r, err := admin.SubmitConfigChange(ctx, &protocol.WsSubmitConfigChangeRequest{UserId: user, ConfigChange: allConfigChanges()[0]})
		if err != nil {
			t.Fatal(err)
		}
		got := waitTerminal(t, admin, []string{r.GetId()}, time.Minute)[r.GetId()].GetState()
		return got, clusterH.asked.Load() - c0, aliceH.asked.Load() - a0
	}
	want := func(user string, state protocol.WsRequestState, toCluster, toAlice int32) {
		t.Helper()
		got, c, a := ask(user)
		if got != state || c != toCluster || a != toAlice {
			t.Fatalf("request of %s: %v, cluster's handler asked %d times, alice's %d; want %v, %d, %d",
				user, got, c, a, state, toCluster, toAlice)
		}
	}
	const approved, rejected = protocol.WsRequestState_WS_REQUEST_STATE_APPROVED, protocol.WsRequestState_WS_REQUEST_STATE_REJECTED
	want(alice.ID, rejected, 0, 1)
	want(bob.ID, approved, 1, 0)

	// The record survives a snapshot and a restart.
	if err := n.cluster.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = startNode(t, cfg)
	if h, ok := n.cluster.FSM().UserCallback(aliceRec); !ok || h.URL != aliceH.url {
		t.Fatalf("after a restart: %+v %v", h, ok)
	}
	if ac, err = NewAdminClient(cfg); err != nil { // the admin API's port is new
		t.Fatal(err)
	}
	want(alice.ID, rejected, 0, 1)

	// Cleared, alice's requests go to the cluster's handler again.
	if l, err = ac.ClearUserCallback(ctx, aliceRec); err != nil || len(l.Users) != 0 {
		t.Fatalf("clear: %+v %v", l, err)
	}
	want(alice.ID, approved, 1, 0)
}

// TestUserCallbackWithoutClusterHandler: a user's own handler is asked
// even where the cluster has none; the other users are approved
// automatically, as without any handler.
func TestUserCallbackWithoutClusterHandler(t *testing.T) {
	dir := t.TempDir()
	_, admin := testWorkspace(t, filepath.Join(dir, "ws"))
	aliceH := startRefHandler(t, dir, "alice", rejectAll)
	cfg := testConfig(t, dir)
	n := startNode(t, cfg)
	ctx := ctxT(t, 2*time.Minute)
	var ids []string
	for range 2 {
		_, tok := createUser(t, admin, protocol.WsRole_WS_ROLE_APPROVER)
		u, err := n.Pair(ctx, PairRequest{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	if _, err := n.SetUserCallback(ctx, ids[0], aliceH.url, aliceH.pem); err != nil {
		t.Fatal(err)
	}
	var reqs []string
	for _, id := range ids {
		r, err := admin.SubmitConfigChange(ctx, &protocol.WsSubmitConfigChangeRequest{UserId: id, ConfigChange: allConfigChanges()[0]})
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, r.GetId())
	}
	got := waitTerminal(t, admin, reqs, time.Minute)
	if s := got[reqs[0]].GetState(); s != protocol.WsRequestState_WS_REQUEST_STATE_REJECTED || aliceH.asked.Load() != 1 {
		t.Fatalf("the user with a handler: %v, its handler asked %d times", s, aliceH.asked.Load())
	}
	if s := got[reqs[1]].GetState(); s != protocol.WsRequestState_WS_REQUEST_STATE_APPROVED {
		t.Fatalf("the user without: %v", s)
	}
}

// TestUserCallbackRefusals: each bad change is refused with its reason
// through the admin API, and nothing is recorded.
func TestUserCallbackRefusals(t *testing.T) {
	dir := t.TempDir()
	_, admin := testWorkspace(t, filepath.Join(dir, "ws"))
	h := startRefHandler(t, dir, "h", &callback.Policy{})
	cfg := testConfig(t, dir)
	n := startNode(t, cfg)
	ac, err := NewAdminClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, time.Minute)
	_, tok := createUser(t, admin, protocol.WsRole_WS_ROLE_APPROVER)
	u, err := n.Pair(ctx, PairRequest{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := func() []byte {
		k, err := callback.GenerateKey(callback.KeyTypeRSA)
		if err != nil {
			t.Fatal(err)
		}
		p, err := callback.MarshalPublicKeyPEM(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}()
	tests := []struct {
		name, user, url string
		key             []byte
		clear           bool
		want            error
		says            []string
	}{
		{name: "unknown user", user: "nobody", url: h.url, key: h.pem, want: cluster.ErrUnknownUser, says: []string{`"nobody"`}},
		{name: "unknown workspace", user: "ws-x/" + u.ID, url: h.url, key: h.pem, want: cluster.ErrUnknownUser},
		{name: "http to another host", user: u.ID, url: "http://callback.example/cb", key: h.pem, want: ErrBadCallbackHandler, says: []string{"use https"}},
		{name: "no url", user: u.ID, key: h.pem, want: ErrBadCallbackHandler, says: []string{"URL is required"}},
		{name: "a query", user: u.ID, url: "https://callback.example/?a=b", key: h.pem, want: ErrBadCallbackHandler, says: []string{"query"}},
		{name: "not a key", user: u.ID, url: h.url, key: []byte("hello"), want: ErrBadCallbackHandler, says: []string{"no PEM block"}},
		{name: "a private key block", user: u.ID, url: h.url, key: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), want: ErrBadCallbackHandler, says: []string{"not a public key"}},
		{name: "both at once", user: u.ID, url: "ftp://x", key: nil, want: ErrBadCallbackHandler, says: []string{"scheme", "public key"}},
		{name: "clear when none is set", user: u.ID, clear: true, want: cluster.ErrNoUserCallback},
		{name: "clear of an unknown user", user: "nobody", clear: true, want: cluster.ErrUnknownUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.clear {
				_, err = ac.ClearUserCallback(ctx, tt.user)
			} else {
				_, err = ac.SetUserCallback(ctx, tt.user, tt.url, tt.key)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not say %q", err, s)
				}
			}
			if hs := n.cluster.FSM().UserCallbacks(); len(hs) != 0 {
				t.Fatalf("recorded %+v", hs)
			}
		})
	}
	// An RSA key is as good as an ECDSA one, and the user may be named by
	// its record id.
	l, err := ac.SetUserCallback(ctx, userRecordID(u.WorkspaceID, u.ID), h.url, rsaPEM)
	if err != nil || len(l.Users) != 1 {
		t.Fatalf("set with an RSA key: %+v %v", l, err)
	}
}
