package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/client"
)

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func get(t testing.TB, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestAdminAPI covers health before and after start, authentication,
// pairing errors, an approver-only pairing (no key generation), the user
// list, status, metrics and a restart that serves the user again.
func TestAdminAPI(t *testing.T) {
	dir := t.TempDir()
	_, admin := testWorkspace(t, filepath.Join(dir, "ws"))
	cfg := testConfig(t, dir)
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + n.AdminAddr()
	// Before Start, the node has no leader yet (503) or is catching up
	// (473), depending on how fast raft elects it.
	if code, body := get(t, base+PathHealth, ""); code != HealthUnavailable && code != HealthCatchingUp {
		t.Fatalf("health before start: %d %s", code, body)
	}
	if err := n.Start(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, base+PathHealth, ""); code != http.StatusOK {
		t.Fatalf("health after start: %d", code)
	}
	if code, _ := get(t, base+PathUsers, ""); code != http.StatusUnauthorized {
		t.Fatalf("users without token: %d", code)
	}
	// The status names requests and users: it needs the token too.
	if code, _ := get(t, base+PathStatus, ""); code != http.StatusUnauthorized {
		t.Fatalf("status without token: %d", code)
	}
	if code, _ := get(t, base+PathUsers, strings.Repeat("0", 64)); code != http.StatusUnauthorized {
		t.Fatalf("users with a wrong token: %d", code)
	}
	tokFile, err := os.Stat(filepath.Join(cfg.DataDir, AdminTokenFile))
	if err != nil || tokFile.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v %v", tokFile, err)
	}

	ac, err := NewAdminClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, time.Minute)
	if _, err := ac.Pair(ctx, PairRequest{Token: "coterie-pair-v1.garbage"}); !errors.Is(err, ErrBadToken) {
		t.Fatalf("garbled token: %v", err)
	}
	id, tok := createUser(t, admin, protocol.WsRole_WS_ROLE_APPROVER)
	if _, err := ac.Pair(ctx, PairRequest{Token: tok, Role: "signer"}); !errors.Is(err, ErrRoleMismatch) ||
		!strings.Contains(err.Error(), "role approver, not signer") {
		t.Fatalf("token for another role: %v", err)
	}
	info, err := ac.Pair(ctx, PairRequest{Token: tok, Role: "approver"})
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != id || info.PublicKey != "" || info.Quorum != 0 || info.Role != "approver" || len(info.ApprovalPublicKey) != 64 {
		t.Fatalf("paired %+v", info)
	}
	if _, err := ac.Pair(ctx, PairRequest{Token: tok}); !errors.Is(err, ErrAlreadyPaired) {
		t.Fatalf("second pairing: %v", err)
	}
	users, err := ac.Users(ctx)
	if err != nil || len(users) != 1 || users[0].ID != id {
		t.Fatalf("users %+v %v", users, err)
	}
	st, err := ac.Status(ctx)
	if err != nil || st.NodeID != "n1" || st.Raft.State != "Leader" || !st.Ready || len(st.Users) != 1 || st.Phase != "serving" ||
		st.Health.Status != "serving" || len(st.Cluster.Members) != 1 || st.Cluster.Members[0].Role != RoleLeader {
		t.Fatalf("status %+v %v", st, err)
	}
	pemBytes, err := ac.CallbackPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := callback.ParsePublicKeyPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	// The workspace recorded the cluster's callback key at pairing.
	wsUsers, err := admin.ListUsers(ctx, &protocol.WsListUsersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	if len(wsUsers.GetUsers()) != 1 || !bytes.Equal(wsUsers.GetUsers()[0].GetCallbackPublicKey(), der) {
		t.Fatal("the workspace holds another callback key")
	}
	code, metrics := get(t, base+PathMetrics, "")
	for _, want := range []string{`coterie_raft_apply_seconds_count{command="key_record_added",result="ok"}`,
		`coterie_raft_apply_seconds_count{command="api_user_added",result="ok"}`, "coterie_api_users 1", "coterie_node_ready 1"} {
		if code != http.StatusOK || !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// A second user paired after a snapshot lives only in the log, which a
	// restarted node replays after its election: Start must wait for that.
	if err := n.cluster.Snapshot(); err != nil {
		t.Fatal(err)
	}
	_, tok2 := createUser(t, admin, protocol.WsRole_WS_ROLE_APPROVER)
	info2, err := ac.Pair(ctx, PairRequest{Token: tok2})
	if err != nil {
		t.Fatal(err)
	}

	// A restart serves both users again, with the same callback key.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2 := startNode(t, cfg)
	if got := userListings(n2.Users()); len(got) != 2 || !reflect.DeepEqual(got, []UserListing{info, info2}) {
		t.Fatalf("after restart: %+v", got)
	}
	if !n2.CallbackPublicKey().Equal(pub) {
		t.Fatal("callback key changed across a restart")
	}
}

// fixture mirrors workspace/internal/fixturegen's node.json: a signer
// (role both) paired with the workspace in testdata/signer-2of2/ws, with
// three presignatures.
type fixture struct {
	Credentials   []byte   `json:"credentials"`
	ApprovalKey   []byte   `json:"approval_key"`
	KeyShare      []byte   `json:"key_share"`
	SigningKey    []byte   `json:"signing_key"`
	Presignatures [][]byte `json:"presignatures"`
}

const fixtureRoot = "../workspace/testdata/signer-2of2"

// copyDir copies the fixture's workspace directory.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// importFixture records the fixture's user in n's cluster, sealed exactly as
// pairing does, puts its presignatures in the pool and serves the user:
// pairing without the minutes a key generation takes under the race
// detector.
// fixtureRun is a running node with the test config that serves the
// fixture user against a served copy of the fixture workspace.
type fixtureRun struct {
	n     *Node
	cfg   Config
	u     *User
	fx    fixture
	admin *client.Admin
}

func fixtureNode(t testing.TB) fixtureRun {
	t.Helper()
	dir := t.TempDir()
	wsDir := filepath.Join(dir, "ws")
	copyDir(t, filepath.Join(fixtureRoot, "ws"), wsDir)
	ws, admin := testWorkspace(t, wsDir)
	cfg := testConfig(t, dir)
	n := startNode(t, cfg)
	u, fx := importFixture(t, n, ws.Addr())
	return fixtureRun{n: n, cfg: cfg, u: u, fx: fx, admin: admin}
}

func importFixture(t testing.TB, n *Node, wsAddr string) (*User, fixture) {
	t.Helper()
	return importFixtureFrom(t, n, fixtureRoot, wsAddr, nil)
}

// importFixtureFrom is importFixture of the fixture in root; rewrite, when
// set, changes the user's records before they are proposed.
func importFixtureFrom(t testing.TB, n *Node, root, wsAddr string, rewrite func(u *User, keys []cluster.Record, rec cluster.Record) ([]cluster.Record, cluster.Record)) (*User, fixture) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "node.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	creds, err := client.UnmarshalCredentials(f.Credentials)
	if err != nil {
		t.Fatal(err)
	}
	creds.Address = wsAddr
	share, err := mpc.UnmarshalKeyShare(f.KeyShare)
	if err != nil {
		t.Fatal(err)
	}
	key := &protocol.WsSigningKey{}
	if err := proto.Unmarshal(f.SigningKey, key); err != nil {
		t.Fatal(err)
	}
	u := &User{Credentials: creds, SigningKey: key, Info: UserInfo{
		ID: creds.UserID, WorkspaceID: creds.WorkspaceID, Role: "both", WorkspaceAddress: creds.Address,
		PublicKey: hexs(key.GetPublicKey()), ChainCode: hexs(key.GetChainCode()), NodePartyID: key.GetNodePartyId(),
		CloudPartyIDs: key.GetCloudPartyIds(), SignerPartyIDs: key.GetSignerPartyIds(), Threshold: key.GetThreshold(),
	}}
	keys, rec, err := userRecords(n.kr, u, userSecrets{share: share, approvalKey: ed25519.NewKeyFromSeed(f.ApprovalKey)})
	if err != nil {
		t.Fatal(err)
	}
	if rewrite != nil {
		keys, rec = rewrite(u, keys, rec)
	}
	ctx := ctxT(t, 30*time.Second)
	for _, k := range keys {
		if err := n.cluster.AddKeyRecord(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := cluster.NewPresignStore(cluster.PresignStoreConfig{Cluster: n.cluster.Cluster, Cipher: n.kr, KeyID: u.Info.ShareRecord})
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range f.Presignatures {
		p, err := mpc.UnmarshalPresignature(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := ps.Add(ctx, p, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.cluster.AddAPIUser(ctx, rec); err != nil {
		t.Fatal(err)
	}
	opened, err := openUser(n.kr, n.cluster, mustAPIUser(t, n, rec.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.addUser(opened); err != nil {
		t.Fatal(err)
	}
	return opened, f
}

func mustAPIUser(t testing.TB, n *Node, id string) cluster.Record {
	r, ok := n.cluster.APIUser(id)
	if !ok {
		t.Fatalf("no API user %s", id)
	}
	return r
}

// waitCompleted waits until the node's replica shows every request
// completed: the Session records the outcome in raft just after the
// workspace has it.
func waitCompleted(t testing.TB, n *Node, ids ...string) {
	t.Helper()
	events, stop := n.cluster.Subscribe(1024)
	defer stop()
	timeout := time.After(30 * time.Second)
	for _, id := range ids {
		for {
			if info, ok := n.cluster.Request(id); ok && info.Status == cluster.StatusCompleted {
				break
			}
			select {
			case <-events: // something applied: look again
			case <-timeout:
				t.Fatalf("request %s is not completed in the cluster", id)
			}
		}
	}
}

// waitTerminal waits until the workspace has every request in a terminal
// state.
func waitTerminal(t testing.TB, admin *client.Admin, ids []string, d time.Duration) map[string]*protocol.WsRequest {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, err := admin.ListRequests(ctxT(t, 10*time.Second), &protocol.WsListRequestsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]*protocol.WsRequest{}
		for _, r := range resp.GetRequests() {
			got[r.GetId()] = r
		}
		done := 0
		for _, id := range ids {
			switch got[id].GetState() {
			case protocol.WsRequestState_WS_REQUEST_STATE_SIGNED, protocol.WsRequestState_WS_REQUEST_STATE_APPROVED,
				protocol.WsRequestState_WS_REQUEST_STATE_REJECTED, protocol.WsRequestState_WS_REQUEST_STATE_FAILED:
				done++
			}
		}
		if done == len(ids) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests finished after %s", done, len(ids), d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSignAndApproveEndToEnd runs the node against the workspace with a
// pre-generated key (fast enough for the race detector): two transactions
// signed from the pool and all eight config-change types approved, all
// verified by the workspace; the FSM records each request's outcome and
// each presignature used once; and no secret is in the node's files.
func TestSignAndApproveEndToEnd(t *testing.T) {
	f := fixtureNode(t)
	n, cfg, u, fx, admin := f.n, f.cfg, f.u, f.fx, f.admin

	ctx := ctxT(t, time.Minute)
	var ids []string
	for _, amount := range []string{"1", "2"} {
		r, err := admin.SubmitTransaction(ctx, &protocol.WsSubmitTransactionRequest{UserId: u.Info.ID, Transaction: &protocol.WsTransaction{
			Asset: "ETH", Amount: amount, Source: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
			Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "0xabc"}, Amount: amount}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.GetId())
	}
	for _, cc := range allConfigChanges() {
		r, err := admin.SubmitConfigChange(ctx, &protocol.WsSubmitConfigChangeRequest{UserId: u.Info.ID, ConfigChange: cc})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.GetId())
	}
	got := waitTerminal(t, admin, ids, 2*time.Minute)
	waitCompleted(t, n, ids...)
	for i, id := range ids {
		want := protocol.WsRequestState_WS_REQUEST_STATE_APPROVED
		if i < 2 {
			want = protocol.WsRequestState_WS_REQUEST_STATE_SIGNED
		}
		if got[id].GetState() != want {
			t.Errorf("%s: %v (%s), want %v", id, got[id].GetState(), got[id].GetReason(), want)
		}
	}
	v, err := admin.Verify(ctx, &protocol.WsVerifyRequest{})
	if err != nil || len(v.GetProblems()) != 0 || v.GetSignaturesChecked() != 2 || v.GetApprovalsChecked() != 8 {
		t.Fatalf("verify %v %v", v, err)
	}
	used := map[string]string{}
	for _, id := range ids {
		info, ok := n.cluster.Request(id)
		if !ok || info.Status != cluster.StatusCompleted {
			t.Fatalf("FSM request %s: %+v", id, info)
		}
		for _, p := range info.Reserved {
			if other, dup := used[p.ID]; dup {
				t.Fatalf("presignature %s used by %s and %s", p.ID, other, id)
			}
			used[p.ID] = id
		}
	}
	if len(used) != 2 {
		t.Fatalf("%d presignatures used, want 2", len(used))
	}
	_, metrics := get(t, "http://"+n.AdminAddr()+PathMetrics, "")
	for _, want := range []string{`coterie_signing_stage_seconds_count{stage="online_round"}`, `coterie_requests_total{outcome="signed"} 2`,
		`coterie_requests_total{outcome="approved"} 8`, `coterie_raft_apply_seconds_count{command="claim",result="ok"}`} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
	checkMetrics(t, metrics, ids)
	ac, err := NewAdminClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if stages := checkStages(t, n, ac); stages["total"] != 10 || stages["online_round"] != 2 || stages["approval"] != 8 {
		t.Errorf("stage histograms hold %v, want 10 totals, 2 online rounds and 8 approvals", stages)
	}

	// I4: the node's files hold no plaintext secret.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	creds, _ := client.UnmarshalCredentials(fx.Credentials)
	clientKey, _ := x509.MarshalPKCS8PrivateKey(creds.ClientKey)
	secrets := map[string][]byte{"approval seed": fx.ApprovalKey, "key share": fx.KeyShare[:64], "client key": clientKey}
	_ = filepath.WalkDir(cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(path)
		for name, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("%s holds the %s in plaintext", path, name)
			}
		}
		return nil
	})
}

func allConfigChanges() []*protocol.WsConfigChange {
	return []*protocol.WsConfigChange{
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_EXCHANGE, Payload: &protocol.WsConfigChange_Exchange{Exchange: &protocol.WsExchangeAccount{ExchangeType: "KRAKEN", Name: "k"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_FIAT_ACCOUNT, Payload: &protocol.WsConfigChange_FiatAccount{FiatAccount: &protocol.WsFiatAccount{Provider: "p", Name: "n", AccountNumber: "1"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_UNMANAGED_WALLET, Payload: &protocol.WsConfigChange_UnmanagedWallet{UnmanagedWallet: &protocol.WsUnmanagedWallet{Name: "w", Asset: "BTC", Address: "bc1q"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ADD_NETWORK_CONNECTION, Payload: &protocol.WsConfigChange_NetworkConnection{NetworkConnection: &protocol.WsNetworkConnection{PeerNetworkId: "p", Name: "n"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ADD_USER, Payload: &protocol.WsConfigChange_AddUser{AddUser: &protocol.WsAddUser{Email: "a@b.c", Role: "ADMIN"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_CHANGE_QUORUM_THRESHOLD, Payload: &protocol.WsConfigChange_QuorumChange{QuorumChange: &protocol.WsQuorumChange{OldThreshold: 1, NewThreshold: 2, Admins: 3}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_RE_ENROLL_DEVICE, Payload: &protocol.WsConfigChange_DeviceReEnroll{DeviceReEnroll: &protocol.WsDeviceReEnroll{UserEmail: "a@b.c", DeviceId: "d"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ENABLE_ONE_TIME_ADDRESS, Payload: &protocol.WsConfigChange_OneTimeAddress{OneTimeAddress: &protocol.WsOneTimeAddress{Enabled: true}}},
	}
}
