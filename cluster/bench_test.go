package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/cluster/clustertest"
)

// BenchmarkProposeApply measures Propose -> Apply latency on a 3-node
// in-memory cluster: a Claim proposed on the leader, and one proposed on a
// follower (forwarded, and waited for until the follower's own FSM applied
// it). It reports the median and p99 per proposal; "parallel" runs 64
// proposers on the leader at once.
func BenchmarkProposeApply(b *testing.B) {
	h := clustertest.New(b, 3, clustertest.Options{})
	leader := h.WaitLeader()
	ctx := context.Background()
	run := func(b *testing.B, c *cluster.Cluster, prefix string) {
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			start := time.Now()
			if err := c.Claim(ctx, fmt.Sprintf("%s-%d", prefix, i), "u1"); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		report(b, lat)
	}
	b.Run("leader", func(b *testing.B) { run(b, h.Node(leader), "l") })
	b.Run("follower", func(b *testing.B) { run(b, h.Node(h.Follower(leader)), "f") })
	b.Run("parallel", func(b *testing.B) {
		const workers = 64
		c := h.Node(leader)
		var mu sync.Mutex
		lat := make([]time.Duration, 0, b.N)
		var wg sync.WaitGroup
		next := make(chan int)
		b.ResetTimer()
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					start := time.Now()
					if err := c.Claim(ctx, fmt.Sprintf("p%d-%d", w, i), "u1"); err != nil {
						b.Error(err)
						return
					}
					d := time.Since(start)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			}()
		}
		for i := range b.N {
			next <- i
		}
		close(next)
		wg.Wait()
		b.StopTimer()
		report(b, lat)
	})
}

func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
