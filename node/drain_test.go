package node

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
)

// gatedHandler is a callback handler that approves everything, but
// answers only once its gate opens: it holds a Session in flight for as
// long as a test needs.
type gatedHandler struct {
	url, keyFile string
	asked        chan struct{} // receives once per request that arrives
	gate         chan struct{} // closed to let the answers through
}

func startGatedHandler(t *testing.T, dir string) *gatedHandler {
	t.Helper()
	key, err := callback.GenerateKey(callback.KeyTypeEC)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := callback.MarshalPublicKeyPEM(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedHandler{keyFile: filepath.Join(dir, "handler.pem"), asked: make(chan struct{}, 16), gate: make(chan struct{})}
	if err := os.WriteFile(g.keyFile, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	scfg := callback.DefaultServerConfig()
	scfg.Policy, scfg.Key, scfg.InsecureSkipRequestVerify = &callback.Policy{}, key, true
	scfg.Logger = testLogger(t, slog.LevelInfo)
	srv, err := callback.NewServer(scfg)
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case g.asked <- struct{}{}:
		default:
		}
		select {
		case <-g.gate:
			srv.ServeHTTP(w, r)
		case <-r.Context().Done():
			http.Error(w, "gone", http.StatusServiceUnavailable)
		case <-ended:
			http.Error(w, "the test ended", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(hs.Close)
	// Cleanups run last first: a held request returns before Close waits
	// for it.
	t.Cleanup(func() { close(ended) })
	g.url = hs.URL
	return g
}

// drainSetup starts the workspace fixture and a node whose callback
// handler holds every request, with the given shutdown grace, and submits
// one config change, which the node has claimed and asked the handler
// about when drainSetup returns.
func drainSetup(t *testing.T, grace time.Duration) (*Node, *gatedHandler, string, func() map[string]*protocol.WsRequest) {
	dir := t.TempDir()
	wsDir := filepath.Join(dir, "ws")
	copyDir(t, filepath.Join(fixtureRoot, "ws"), wsDir)
	ws, admin := testWorkspace(t, wsDir)
	g := startGatedHandler(t, dir)
	cfg := testConfig(t, dir)
	cfg.Callback.URL, cfg.Callback.HandlerPublicKey = g.url, g.keyFile
	cfg.ShutdownGrace = grace
	n := startNode(t, cfg)
	u, _ := importFixture(t, n, ws.Addr())
	ctx := ctxT(t, time.Minute)
	r, err := admin.SubmitConfigChange(ctx, &protocol.WsSubmitConfigChangeRequest{UserId: u.Info.ID, ConfigChange: allConfigChanges()[0]})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.asked:
	case <-ctx.Done():
		t.Fatal("the node never asked the callback handler")
	}
	if owner, ok := n.cluster.Owner(r.GetId()); !ok || owner != "n1" {
		t.Fatalf("request %s owned by %q", r.GetId(), owner)
	}
	return n, g, r.GetId(), func() map[string]*protocol.WsRequest {
		return waitTerminal(t, admin, []string{r.GetId()}, time.Minute)
	}
}

type drainResult struct {
	rep DrainReport
	err error
}

// TestDrainFinishesSessionInFlight drains a node while a Session waits for
// the callback handler: the node says "draining" (health 429) meanwhile,
// and the drain waits for the Session, which finishes its request.
func TestDrainFinishesSessionInFlight(t *testing.T) {
	n, g, id, finished := drainSetup(t, time.Minute)
	done := make(chan drainResult, 1)
	go func() {
		rep, err := n.Drain(ctxT(t, 2*time.Minute))
		done <- drainResult{rep, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for n.Phase() != PhaseDraining {
		if time.Now().After(deadline) {
			t.Fatalf("phase %s, want draining", n.Phase())
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, body := get(t, "http://"+n.AdminAddr()+PathHealth, "")
	var h Health
	if err := json.Unmarshal(body, &h); err != nil || code != HealthStandby || h.Status != "standby" || h.Phase != "draining" {
		t.Fatalf("health while draining: %d %s", code, body)
	}
	st := n.Status()
	if st.Phase != "draining" || st.Ready || st.Health.Status != "standby" {
		t.Fatalf("status while draining: %+v", st)
	}
	if _, err := n.Pair(ctxT(t, time.Second), PairRequest{Token: "x"}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("pairing while draining: %v", err)
	}
	select {
	case r := <-done:
		t.Fatalf("the drain returned while a Session was in flight: %+v %v", r.rep, r.err)
	default:
	}

	close(g.gate)
	var r drainResult
	select {
	case r = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the drain did not return after the Session could finish")
	}
	if r.err != nil || r.rep.NodeID != "n1" || len(r.rep.HandedBack) != 0 || r.rep.Left || r.rep.TransferredTo != "" {
		t.Fatalf("drain: %+v %v", r.rep, r.err)
	}
	if got := finished()[id].GetState(); got != protocol.WsRequestState_WS_REQUEST_STATE_APPROVED {
		t.Fatalf("request %s: %v", id, got)
	}
	if info, _ := n.cluster.Request(id); info.Status != cluster.StatusCompleted {
		t.Fatalf("FSM request %+v", info)
	}
	select {
	case <-n.Drained():
	default:
		t.Fatal("Drained is not closed after the drain")
	}
	if _, err := n.Drain(ctxT(t, time.Second)); !errors.Is(err, ErrNotReady) {
		t.Fatalf("a second drain: %v", err)
	}
}

// TestDrainHandsBackTheRest drains a node whose Session cannot finish
// within the grace period: the drain releases its request, which returns
// to unclaimed in the cluster state for any node to claim at once.
func TestDrainHandsBackTheRest(t *testing.T) {
	n, g, id, _ := drainSetup(t, 300*time.Millisecond)
	defer close(g.gate)
	rep, err := n.Drain(ctxT(t, time.Minute))
	if err != nil || !reflect.DeepEqual(rep.HandedBack, []string{id}) {
		t.Fatalf("drain: %+v %v", rep, err)
	}
	info, ok := n.cluster.Request(id)
	if !ok || info.Status != cluster.StatusUnclaimed || info.Owner != "" {
		t.Fatalf("FSM request after the drain: %+v", info)
	}
	if code, _ := n.Health(); code != HealthStandby {
		t.Fatalf("health after the drain: %d", code)
	}
}
