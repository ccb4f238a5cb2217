package workspace_test

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
)

// benchPollers is how many pollers of the user listen: one per node of a
// three-node cluster.
const benchPollers = 3

// pollers connects count pollers of n and returns a channel of every
// (request ID, poller) delivery with its arrival time.
type delivery struct {
	id     string
	poller int
	at     time.Time
}

func startPollers(b *testing.B, n *node, count int) <-chan delivery {
	b.Helper()
	out := make(chan delivery, 1<<16)
	for i := range count {
		stream, err := n.c.Poll(ctx(b), &protocol.WsPollRequest{})
		if err != nil {
			b.Fatal(err)
		}
		if ev, err := stream.Recv(); err != nil || !ev.CaughtUp {
			b.Fatalf("first event = %v, %v", ev, err)
		}
		go func() {
			for {
				ev, err := stream.Recv()
				if err != nil {
					return
				}
				out <- delivery{id: ev.GetRequest().GetId(), poller: i, at: time.Now()}
			}
		}()
	}
	return out
}

func benchEnv(b *testing.B) (*env, *node) {
	e := serve(b, b.TempDir(), clock.Real())
	return e, e.pair(protocol.WsRole_WS_ROLE_APPROVER)
}

// submitCC submits a config change; it may run on any goroutine.
func submitCC(b *testing.B, e *env, user string) (*protocol.WsRequest, error) {
	return e.admin.SubmitConfigChange(ctx(b), &protocol.WsSubmitConfigChangeRequest{UserId: user, ConfigChange: configChange()})
}

// BenchmarkDeliveryLatency measures, one request at a time, the time from
// the submission call until every one of three pollers has the request.
// It reports p50 and p99 in milliseconds (target: p50 at most 5 ms).
func BenchmarkDeliveryLatency(b *testing.B) {
	e, n := benchEnv(b)
	got := startPollers(b, n, benchPollers)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		r, err := submitCC(b, e, n.creds.UserID)
		if err != nil {
			b.Fatal(err)
		}
		var last time.Time
		for seen := 0; seen < benchPollers; {
			d := <-got
			if d.id != r.Id {
				b.Fatalf("poller %d got %s while waiting for %s", d.poller, d.id, r.Id)
			}
			seen++
			last = d.at
		}
		lat = append(lat, last.Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}

// BenchmarkSubmit measures submission throughput: concurrent submitters
// through the admin API, each request committed with fsync before it is
// acknowledged.
func BenchmarkSubmit(b *testing.B) {
	e, n := benchEnv(b)
	b.SetParallelism(8) // 8 × GOMAXPROCS submitters
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := submitCC(b, e, n.creds.UserID); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkDeliveryThroughput measures end-to-end throughput: concurrent
// submitters, and the time until each of three pollers has received every
// request.
func BenchmarkDeliveryThroughput(b *testing.B) {
	e, n := benchEnv(b)
	got := startPollers(b, n, benchPollers)
	var submitted atomic.Int64
	start := time.Now()
	b.ResetTimer()
	var wg sync.WaitGroup
	const submitters = 16
	for w := range submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.N; i += submitters {
				if _, err := submitCC(b, e, n.creds.UserID); err != nil {
					b.Error(err)
					return
				}
				submitted.Add(1)
			}
		}()
	}
	seen := make(map[int]int, benchPollers)
	for total := 0; total < b.N*benchPollers; total++ {
		select {
		case d := <-got:
			seen[d.poller]++
		case <-time.After(30 * time.Second):
			b.Fatalf("deliveries stalled: %v of %d submitted", seen, submitted.Load())
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	if fmt.Sprint(seen) != fmt.Sprint(map[int]int{0: b.N, 1: b.N, 2: b.N}) {
		b.Fatalf("deliveries per poller = %v", seen)
	}
}
