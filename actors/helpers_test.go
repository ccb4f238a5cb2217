package actors_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/cluster/clustertest"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace"
	"github.com/coterie-mpc/coterie/workspace/client"
)

// The tests start from the workspace's generated fixture (TEST ONLY keys):
// a 2-of-2 workspace whose user (role both) has run key generation, and
// the node's side of it, with three presignatures.
const fixture = "../workspace/testdata/signer-2of2"

type fixtureNode struct {
	Credentials   []byte   `json:"credentials"`
	ApprovalKey   []byte   `json:"approval_key"`
	KeyShare      []byte   `json:"key_share"`
	SigningKey    []byte   `json:"signing_key"`
	Presignatures [][]byte `json:"presignatures"`
}

type tlog struct{ t testing.TB }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(strings.TrimSpace(string(p))); return len(p), nil }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// env is one node (a single raft voter), a workspace from the fixture,
// and optionally a callback handler.
type env struct {
	t        testing.TB
	ws       *workspace.Workspace
	wsConfig workspace.Config
	admin    *client.Admin
	wc       *client.Client
	cl       *cluster.Cluster
	h        *clustertest.Harness
	kr       *keyring.Keyring
	engine   *mpc.Engine
	clock    *clock.Fake
	userID   string
	key      *protocol.WsSigningKey
	presigs  []string
	sys      *actors.System
	metrics  *actors.Metrics
	// wrap, when set, wraps the user's workspace connection as the actors
	// see it (a fault injector).
	wrap func(actors.Workspace) actors.Workspace

	// policy server
	handlerURL string
	handlerKey crypto.Signer
	nodeKey    *rsa.PrivateKey
}

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

func tctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// newEnv serves the fixture's workspace, starts a one-node cluster and
// records the user, its keys and its presignatures in the FSM, as pairing
// would have.
func newEnv(t testing.TB) *env { return newEnvWith(t, -1, 1) }

// newEnvWith is newEnv with only the first presigs of the fixture's
// presignatures in the pool (all of them when presigs < 0), and a cluster
// of nodes voters; e.cl is the leader.
func newEnvWith(t testing.TB, presigs, nodes int) *env {
	t.Helper()
	return newEnvOpts(t, presigs, nodes, clustertest.Options{})
}

// newEnvOpts is newEnvWith with the cluster harness's options.
func newEnvOpts(t testing.TB, presigs, nodes int, opts clustertest.Options) *env {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ws")
	copyDir(t, filepath.Join(fixture, "ws"), dir)
	wcfg := workspace.DefaultConfig()
	wcfg.DataDir = dir
	wcfg.Listen = "127.0.0.1:0"
	wcfg.CloudCosigners = 1
	wcfg.Quorum = 2
	wcfg.Clock = clock.Real()
	wcfg.Logger = slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ws, err := workspace.Open(wcfg)
	if err != nil {
		t.Fatal(err)
	}
	ws.Start()
	e := &env{t: t, ws: ws, wsConfig: wcfg, clock: clock.NewFake(time.Now())}
	t.Cleanup(func() {
		if err := e.ws.Close(); err != nil {
			t.Error(err)
		}
	})
	if e.admin, err = client.DialAdmin(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.admin.Close() })

	b, err := os.ReadFile(filepath.Join(fixture, "node.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f fixtureNode
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	creds, err := client.UnmarshalCredentials(f.Credentials)
	if err != nil {
		t.Fatal(err)
	}
	creds.Address = ws.Addr()
	if e.wc, err = client.Dial(creds); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.wc.Close() })
	e.userID = creds.UserID
	e.key = &protocol.WsSigningKey{}
	if err := proto.Unmarshal(f.SigningKey, e.key); err != nil {
		t.Fatal(err)
	}
	if e.engine, err = mpc.New(mpc.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	if e.kr, err = keyring.Generate(); err != nil {
		t.Fatal(err)
	}

	e.h = clustertest.New(t, nodes, opts)
	e.cl = e.h.Node(e.h.WaitLeader())
	c := tctx(t)
	seal := func(id string, plain []byte) []byte {
		ct, err := e.kr.Encrypt(id, plain)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	if err := e.cl.AddAPIUser(c, cluster.Record{ID: e.userID, Public: []byte(e.userID), Sealed: seal(e.userID, f.Credentials)}); err != nil {
		t.Fatal(err)
	}
	for id, plain := range map[string][]byte{shareID(e.userID): f.KeyShare, approvalID(e.userID): f.ApprovalKey} {
		if err := e.cl.AddKeyRecord(c, cluster.Record{ID: id, OwnerID: e.userID, Sealed: seal(id, plain)}); err != nil {
			t.Fatal(err)
		}
	}
	if presigs >= 0 {
		f.Presignatures = f.Presignatures[:presigs]
	}
	pool, err := cluster.NewPresignStore(cluster.PresignStoreConfig{Cluster: e.cl, Cipher: e.kr, KeyID: shareID(e.userID)})
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range f.Presignatures {
		p, err := mpc.UnmarshalPresignature(raw)
		if err != nil {
			t.Fatal(err)
		}
		e.presigs = append(e.presigs, p.ID().String())
		if err := pool.Add(c, p, ""); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func shareID(user string) string    { return "share/" + user }
func approvalID(user string) string { return "approval/" + user }

// restartWorkspace closes the workspace and serves it again from its
// directory on the same address, as a workspace restart would.
func (e *env) restartWorkspace() {
	e.t.Helper()
	addr := e.ws.Addr()
	if err := e.ws.Close(); err != nil {
		e.t.Fatal(err)
	}
	cfg := e.wsConfig
	cfg.Listen = addr
	ws, err := workspace.Open(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ws.Start()
	e.ws = ws
}

// withHandler serves the reference callback server with policy.
func (e *env) withHandler(policy string) {
	t := e.t
	p, err := callback.ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	hk, err := callback.GenerateKey(callback.KeyTypeEC)
	if err != nil {
		t.Fatal(err)
	}
	nk, err := callback.GenerateKey(callback.KeyTypeRSA)
	if err != nil {
		t.Fatal(err)
	}
	e.handlerKey, e.nodeKey = hk, nk.(*rsa.PrivateKey)
	scfg := callback.DefaultServerConfig()
	scfg.Policy = p
	scfg.Key = hk
	scfg.CosignerKeys = []*rsa.PublicKey{&e.nodeKey.PublicKey}
	scfg.Clock = e.clock
	srv, err := callback.NewServer(scfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	e.handlerURL = ts.URL
}

// decider returns the user's callback client: the handler's when one is
// served, else an auto-approving one.
func (e *env) decider(retry callback.Backoff) *callback.Client {
	cfg := callback.DefaultConfig()
	cfg.Clock = e.clock
	cfg.Retry = retry
	cfg.Timeout = 10 * time.Second
	if e.handlerURL != "" {
		cfg.URL = e.handlerURL
		cfg.HandlerKey = e.handlerKey.Public()
		cfg.SigningKey = e.nodeKey
	}
	c, err := callback.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

// start builds and starts the actors of the leader with the user added.
func (e *env) start(adjust func(*actors.Config), retry callback.Backoff) {
	e.sys, e.metrics = e.startOn(e.cl, adjust, retry)
}

// startOn builds and starts the actors of one node with the user added.
func (e *env) startOn(cl *cluster.Cluster, adjust func(*actors.Config), retry callback.Backoff) (*actors.System, *actors.Metrics) {
	t := e.t
	m, err := actors.NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := actors.DefaultConfig()
	cfg.Cluster = cl
	cfg.Cipher = e.kr
	cfg.Engine = e.engine
	cfg.Clock = e.clock
	cfg.Logger = testLogger(t).With("node", cl.NodeID())
	cfg.Metrics = m
	cfg.Pool.MinDepth, cfg.Pool.MaxDepth = 0, 0 // the fixture's presignatures; no refill
	// The workspace's heartbeats come in real time and the tests move the
	// fake clock by minutes at once: a watchdog would see silence.
	// TestWorkspaceLostHandsBack turns it on.
	cfg.PollHeartbeat = 0
	if adjust != nil {
		adjust(&cfg)
	}
	sys, err := actors.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sys.Start(tctx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sys.Stop(c); err != nil {
			t.Error(err)
		}
	})
	var ws actors.Workspace = e.wc
	if e.wrap != nil {
		ws = e.wrap(ws)
	}
	err = sys.AddUser(actors.User{
		ID: e.userID, Workspace: ws, Decider: e.decider(retry), Retry: retry,
		SigningKey: e.key, ShareRecordID: shareID(e.userID), ApprovalRecordID: approvalID(e.userID),
	})
	if err != nil {
		t.Fatal(err)
	}
	return sys, m
}

func tx(amount, note string) *protocol.WsTransaction {
	return &protocol.WsTransaction{
		Asset: "ETH", Amount: amount,
		Source:       &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
		Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}, Amount: amount}},
		Note:         note,
	}
}

func (e *env) submitTx(amount, note string) string {
	e.t.Helper()
	r, err := e.admin.SubmitTransaction(tctx(e.t), &protocol.WsSubmitTransactionRequest{UserId: e.userID, Transaction: tx(amount, note)})
	if err != nil {
		e.t.Fatal(err)
	}
	return r.GetId()
}

// wait polls (real time, bounded) until the FSM has completed request and
// returns the workspace's view of it.
func (e *env) wait(request string) (*protocol.WsRequest, cluster.RequestInfo) {
	e.t.Helper()
	return e.waitFor(request, 30*time.Second)
}

// waitFor is wait with a timeout.
func (e *env) waitFor(request string, timeout time.Duration) (*protocol.WsRequest, cluster.RequestInfo) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if info, ok := e.cl.Request(request); ok && info.Status == cluster.StatusCompleted {
			r, err := e.wc.GetRequest(tctx(e.t), &protocol.WsGetRequestRequest{RequestId: request})
			if err != nil {
				e.t.Fatal(err)
			}
			return r, info
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatalf("request %s did not complete", request)
	return nil, cluster.RequestInfo{}
}

// eventually polls cond (real time, bounded) until it holds.
func (e *env) eventually(timeout time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// advance moves the fake clock half a second a step, at most steps times,
// until cond holds, and reports whether it did. The actors react to each
// step on their own goroutines; a moment of real time after it lets them.
func (e *env) advance(steps int, cond func() bool) bool {
	for range steps {
		if cond() {
			return true
		}
		e.clock.Advance(500 * time.Millisecond)
		time.Sleep(2 * time.Millisecond)
	}
	return cond()
}

// request returns the FSM's record of request id.
func (e *env) request(id string) cluster.RequestInfo {
	r, _ := e.cl.Request(id)
	return r
}

// verify asks the workspace to check every signature and approval.
func (e *env) verify() *protocol.WsVerifyResponse {
	e.t.Helper()
	v, err := e.admin.Verify(tctx(e.t), &protocol.WsVerifyRequest{})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range v.GetProblems() {
		e.t.Errorf("workspace verify: %s digest %d: %s", p.GetRequestId(), p.GetDigestIndex(), p.GetProblem())
	}
	return v
}

// completions counts the FSM's Complete events per request.
type completions struct {
	mu sync.Mutex
	n  map[string]int
}

func (e *env) countCompletions() *completions {
	ch, stop := e.cl.Subscribe(1024)
	e.t.Cleanup(stop)
	c := &completions{n: map[string]int{}}
	go func() {
		for ev := range ch {
			if ev.Kind == cluster.EventCompleted {
				c.mu.Lock()
				c.n[ev.RequestID]++
				c.mu.Unlock()
			}
		}
	}()
	return c
}

// counter reads a counter's value.
func counter(c prometheus.Counter) float64 {
	m := &dto.Metric{}
	if err := c.Write(m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func (c *completions) get(r string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[r]
}
