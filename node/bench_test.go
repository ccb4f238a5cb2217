package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc/mpcbench/mpcbenchtest"
	"github.com/coterie-mpc/coterie/workspace"
	"github.com/coterie-mpc/coterie/workspace/client"
)

// benchPoolDepth is how many presignatures the benchmark makes before it
// measures: enough for a run with b.N = 1 and one with b.N = 20.
const benchPoolDepth = 24

// benchEnv is one workspace and node shared by every run of the benchmark
// (b.N grows across runs; setting up again would refill the pool each time).
type benchEnv struct {
	n      *Node
	admin  *client.Admin
	user   string
	key    string
	events <-chan cluster.Event
	close  func()
}

var (
	benchOnce sync.Once
	bench     *benchEnv
	benchErr  error
)

// TestMain closes the benchmark's shared environment, if a benchmark made
// one.
func TestMain(m *testing.M) {
	code := m.Run()
	if bench != nil {
		bench.close()
	}
	os.Exit(code)
}

func setupBench(b *testing.B) *benchEnv {
	benchOnce.Do(func() { bench, benchErr = newBenchEnv(b) })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return bench
}

func newBenchEnv(b *testing.B) (*benchEnv, error) {
	dir, err := os.MkdirTemp("", "coterie-bench-")
	if err != nil {
		return nil, err
	}
	wsDir := filepath.Join(dir, "ws")
	copyDir(b, filepath.Join(fixtureRoot, "ws"), wsDir)
	// The environment outlives each run of the benchmark; TestMain closes
	// it.
	wcfg := workspace.DefaultConfig()
	wcfg.DataDir = wsDir
	wcfg.Listen = "127.0.0.1:0"
	wcfg.CloudCosigners = 1
	wcfg.Quorum = 2
	ws, err := workspace.Open(wcfg)
	if err != nil {
		return nil, err
	}
	ws.Start()
	admin, err := client.DialAdmin(wsDir)
	if err != nil {
		return nil, err
	}
	cfg := testConfig(b, dir)
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Presign.TargetDepth = benchPoolDepth
	cfg.Presign.MaxDepth = benchPoolDepth
	cfg.TuneActors = func(c *actors.Config) { c.Pool.RefillInterval = 200 * time.Millisecond }
	// First fill the pool, then restart the node with refilling off, so
	// that no presign competes for the CPU while the benchmark measures.
	n, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		return nil, err
	}
	u, _ := importFixture(b, n, ws.Addr())
	for n.cluster.PoolDepth(u.Info.ShareRecord) < benchPoolDepth {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("the pool holds %d presignatures after 5 minutes", n.cluster.PoolDepth(u.Info.ShareRecord))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := n.Close(); err != nil {
		return nil, err
	}
	cfg.Presign.TargetDepth, cfg.Presign.MaxDepth = 0, 0
	if n, err = New(cfg); err != nil {
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		return nil, err
	}
	events, unsub := n.cluster.Subscribe(4096)
	return &benchEnv{n: n, admin: admin, user: u.Info.ID, key: u.Info.ShareRecord, events: events, close: func() {
		unsub()
		_ = n.Close()
		_ = admin.Close()
		_ = ws.Close()
		_ = os.RemoveAll(dir)
	}}, nil
}

// signOne submits a transaction and waits for the node to complete it.
func (e *benchEnv) signOne(b *testing.B, i int) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	amount := fmt.Sprintf("%d", i+1)
	start := time.Now()
	r, err := e.admin.SubmitTransaction(ctx, &protocol.WsSubmitTransactionRequest{UserId: e.user, Transaction: &protocol.WsTransaction{
		Asset: "ETH", Amount: amount, Source: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
		Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "0xbench"}, Amount: amount}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	for {
		select {
		case ev := <-e.events:
			if ev.Kind == cluster.EventCompleted && ev.RequestID == r.GetId() {
				if ev.Outcome != cluster.OutcomeSigned {
					b.Fatalf("request %s: %v", r.GetId(), ev.Outcome)
				}
				return time.Since(start)
			}
		case <-ctx.Done():
			b.Fatalf("request %s not completed in a minute", r.GetId())
		}
	}
}

// stageSums reads the actors' stage histogram: sum of seconds and count
// per stage.
func stageSums(b *testing.B, n *Node) map[string][2]float64 {
	mfs, err := n.metrics.registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string][2]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "coterie_signing_stage_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[stageLabel(m)] = [2]float64{m.GetHistogram().GetSampleSum(), float64(m.GetHistogram().GetSampleCount())}
		}
	}
	return out
}

func stageLabel(m *dto.Metric) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == "stage" {
			return l.GetValue()
		}
	}
	return ""
}

// BenchmarkEndToEnd measures a transaction from its submission to the
// workspace until the node's FSM records it signed: poll, claim commit,
// callback (none configured: automatic approval), reserve commit, online
// round with the cloud co-signer through the workspace relay, the
// workspace's verification, complete commit. The presignature pool is
// warm: filled before the node restarts with refilling off, so that no
// presign competes for the two cores while it measures. Every stage's
// mean (from the node's stage histogram) is reported, with the end-to-end
// p50, the p50 of a bare in-process 2-of-2 PresignOnline measured in the
// same run, and their ratio.
//
// Each operation spends a presignature (about 3 CPU-seconds to make), so run
// it with an explicit count:
//
//	go test ./node -run '^$' -bench EndToEnd -benchtime 20x
func BenchmarkEndToEnd(b *testing.B) {
	bare := mpcbenchtest.OnlineP50(b, "../protocol/mpc/testdata/keys-2of2.cbor")
	e := setupBench(b)
	if depth := e.n.cluster.PoolDepth(e.key); b.N > depth {
		b.Fatalf("b.N = %d but %d presignatures are left: run with -benchtime Nx, N <= %d", b.N, depth, benchPoolDepth-1)
	}
	before := stageSums(b, e.n)
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		lat = append(lat, e.signOne(b, i))
	}
	b.StopTimer()
	after := stageSums(b, e.n)
	stages := make([]string, 0, len(after))
	for s := range after {
		stages = append(stages, s)
	}
	sort.Strings(stages)
	for _, s := range stages {
		if n := after[s][1] - before[s][1]; n > 0 {
			b.ReportMetric((after[s][0]-before[s][0])/n*1000, s+"-ms")
		}
	}
	slices.Sort(lat)
	p50 := lat[len(lat)/2]
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(bare.Microseconds())/1000, "bare-online-p50-ms")
	b.ReportMetric(float64(p50)/float64(bare), "ratio-to-bare")
}
