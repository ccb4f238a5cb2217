package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc/mpcbench/mpcbenchtest"
	"github.com/coterie-mpc/coterie/workspace/store"
)

// The cluster's benchmarks run real `coterie node run` processes on
// loopback, like the failover tests, and spend presignatures (seconds of
// CPU each), so each takes a fixed count:
//
//	go test ./cmd/coterie -run '^$' -bench Failover -benchtime 10x
//	go test ./cmd/coterie -run '^$' -bench FalseReleases -benchtime 10x
//	go test ./cmd/coterie -run '^$' -bench ClusterSigning -benchtime 20x

// BenchmarkFailover kills, in each of its rounds, a follower that owns
// unfinished requests twice and the leader (owning some) once, with
// SIGKILL, and reports the failover time: from the kill until the last of
// the killed node's unfinished requests was claimed by another node (the
// claiming node's FSM timestamp). The killed node restarts and catches up
// before the next kill. -benchtime 10x gives 20 follower and 10 leader
// kills.
func BenchmarkFailover(b *testing.B) {
	c := newTestCluster(b, 1)
	c.pair(0)
	var follower, leader []time.Duration
	for b.Loop() {
		for range 2 {
			follower = append(follower, c.killOwner(false))
		}
		leader = append(leader, c.killOwner(true))
	}
	c.checkInvariants()
	reportPercentiles(b, "follower", follower)
	reportPercentiles(b, "leader", leader)
}

// killOwner submits requests until the leader (or a follower) owns some
// unfinished ones, kills it, and returns how long its requests took to
// resume elsewhere. It restarts the node and waits for the requests to
// finish.
func (c *testCluster) killOwner(leader bool) time.Duration {
	for range 10 {
		ids := c.submit(3, "failover bench")
		lead, followers := c.leader()
		candidates := followers
		if leader {
			candidates = []*clusterNode{lead}
		}
		victim, owned := c.ownerOf(candidates, ids, 30*time.Second)
		if victim == nil {
			c.waitDone(ids, 3*time.Minute)
			continue
		}
		killed := time.Now()
		victim.proc.kill()
		took := c.resumed(victim, owned, killed)
		c.waitDone(ids, 3*time.Minute)
		c.run(slices.Index(c.nodes, victim))
		c.waitMembers(len(c.nodes))
		if len(took) > 0 {
			return slices.Max(took)
		}
	}
	c.t.Fatalf("in 10 tries no %s owned an unfinished request when killed", map[bool]string{false: "follower", true: "leader"}[leader])
	return 0
}

// BenchmarkFalseReleases runs the three-node cluster for a minute a round with
// requests always waiting and every CPU busy (the nodes presign, and the
// benchmark spins one goroutine per CPU), at the test configs'
// owner_timeout of 1 s, and counts the releases of owners that were alive:
// no node is killed or stopped, so every release is a false one. It
// reports them per hour.
func BenchmarkFalseReleases(b *testing.B) {
	c := newTestCluster(b, 1)
	c.pair(0)
	var stop atomic.Bool
	var spin sync.WaitGroup
	for range runtime.NumCPU() {
		spin.Add(1)
		go func() {
			defer spin.Done()
			for x := 0; !stop.Load(); x++ {
				_ = x * x
			}
		}()
	}
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var pending []string
	for b.Loop() {
		end := time.Now().Add(time.Minute)
		for t := time.Now(); t.Before(end); t = <-tick.C {
			st := c.states()
			pending = slices.DeleteFunc(pending, func(id string) bool { return store.Terminal(st[id].GetState()) })
			if len(pending) < 6 {
				pending = append(pending, c.submit(3, "load")...)
			}
		}
	}
	stop.Store(true)
	spin.Wait()
	elapsed := time.Since(start)
	c.waitDone(c.ids, 5*time.Minute)
	c.checkInvariants()
	released := c.logCount("cluster releasing silent owner")
	b.ReportMetric(float64(len(c.ids)), "requests")
	b.ReportMetric(float64(released), "false-releases")
	b.ReportMetric(float64(released)/elapsed.Hours(), "false-releases/hour")
}

// logCount counts the lines of every node's logs that contain s.
func (c *testCluster) logCount(s string) int {
	logs, err := filepath.Glob(filepath.Join(c.dir, "n*-run*.log"))
	if err != nil {
		c.t.Fatal(err)
	}
	n := 0
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			c.t.Fatal(err)
		}
		n += strings.Count(string(b), s)
	}
	return n
}

// BenchmarkClusterSigning measures end-to-end signing under light load,
// one transaction at a time with warm pools, from the workspace's
// accepting it to its verified signature (the workspace's own
// timestamps), on three nodes and on one (each round signs one on each),
// and a bare PresignOnline of the library in the same run. It reports the
// p50 of each and the ratios.
func BenchmarkClusterSigning(b *testing.B) {
	bare := mpcbenchtest.OnlineP50(b, "../../protocol/mpc/testdata/keys-2of2.cbor")
	three, one := newTestClusterOf(b, 1, 3), newTestClusterOf(b, 1, 1)
	three.pair(0)
	one.pair(0)
	var d3, d1 []time.Duration
	for b.Loop() {
		d3 = append(d3, three.signOne())
		d1 = append(d1, one.signOne())
	}
	p50 := func(ds []time.Duration) time.Duration { slices.Sort(ds); return ds[len(ds)/2] }
	p3, p1 := p50(d3), p50(d1)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(bare), "bare-online-p50-ms")
	b.ReportMetric(ms(p1), "1-node-p50-ms")
	b.ReportMetric(ms(p3), "3-node-p50-ms")
	b.ReportMetric(float64(p1)/float64(bare), "1-node/bare")
	b.ReportMetric(float64(p3)/float64(bare), "3-node/bare")
	b.ReportMetric(float64(p3)/float64(p1), "3-node/1-node")
}

// signOne signs one transaction once every node's pools are at their
// targets with no presign running (so that nothing competes with the
// signature for the CPUs), and returns the workspace's created-to-completed
// time.
func (c *testCluster) signOne() time.Duration {
	waitFor(c.t, 3*time.Minute, "warm, idle pools", c.poolsIdle, c.procs()...)
	ids := c.submit(1, "latency")
	c.waitDone(ids, time.Minute)
	r := c.states()[ids[0]]
	if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED {
		c.t.Fatalf("request %s ended %v", ids[0], r.GetState())
	}
	return time.Duration(r.GetCompletedAt() - r.GetCreatedAt())
}

// poolsIdle reports whether every node's pools are at least at their
// targets and none is presigning.
func (c *testCluster) poolsIdle() bool {
	for _, n := range c.nodes {
		st, err := n.ac.Status(c.ctx())
		if err != nil {
			return false
		}
		raw, err := json.Marshal(st.Actors)
		if err != nil {
			return false
		}
		var as actors.Status
		if json.Unmarshal(raw, &as) != nil || len(as.Pools) == 0 {
			return false
		}
		for _, p := range as.Pools {
			if p.Depth < p.Target || p.InFlight > 0 || p.Refilling {
				return false
			}
		}
	}
	return true
}

// reportPercentiles reports the p50 and p99 (the nearest rank) of ds in
// milliseconds, and how many samples they rest on.
func reportPercentiles(b *testing.B, name string, ds []time.Duration) {
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(q*float64(len(ds))+0.999999) - 1
		return float64(ds[max(i, 0)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(ds)), name+"-kills")
	b.ReportMetric(at(0.50), name+"-p50-ms")
	b.ReportMetric(at(0.99), name+"-p99-ms")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, name+"-max-ms")
}
