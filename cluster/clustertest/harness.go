package clustertest

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/cluster"
)

// Options configure a Harness.
type Options struct {
	// Configure, when set, adjusts each node's config before it starts.
	Configure func(*cluster.Config)
	// LogLevel is the level of the logs sent to t.Log; default Warn.
	LogLevel slog.Level
}

// Node is one node of a Harness. Cluster is nil while the node is stopped.
type Node struct {
	ID      string
	Addr    string
	Storage *cluster.Storage
	Cluster *cluster.Cluster
}

// Harness is a cluster of nodes in one process.
type Harness struct {
	t     testing.TB
	opts  Options
	log   *slog.Logger
	Net   *cluster.InmemNetwork
	Clock *clock.Fake
	Nodes []*Node
}

// Config returns the harness's base config for node id: timing fast enough
// for tests, in-memory storage and transport are filled in by the harness.
func Config(id string) cluster.Config {
	cfg := cluster.DefaultConfig()
	cfg.NodeID = id
	cfg.HeartbeatTimeout = 100 * time.Millisecond
	cfg.ElectionTimeout = 100 * time.Millisecond
	cfg.LeaderLeaseTimeout = 50 * time.Millisecond
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.ApplyTimeout = 5 * time.Second
	cfg.TransportTimeout = 500 * time.Millisecond
	cfg.OwnerTimeout = 3 * time.Second
	cfg.OwnerCheckInterval = 100 * time.Millisecond
	return cfg
}

// New starts n voters bootstrapped together, named n1..nN, and stops them
// when the test ends. It does not wait for a leader; see WaitLeader.
func New(t testing.TB, n int, opts Options) *Harness {
	t.Helper()
	if opts.LogLevel == 0 {
		opts.LogLevel = slog.LevelWarn
	}
	h := &Harness{
		t:     t,
		opts:  opts,
		log:   Logger(t, opts.LogLevel),
		Net:   cluster.NewInmemNetwork(),
		Clock: clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
	}
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		h.Nodes = append(h.Nodes, &Node{ID: id, Addr: "inmem-" + id, Storage: cluster.NewInmemStorage()})
	}
	t.Cleanup(h.Close)
	for i := range h.Nodes {
		h.start(i, true)
	}
	return h
}

func (h *Harness) start(i int, bootstrap bool) {
	h.t.Helper()
	n := h.Nodes[i]
	cfg := Config(n.ID)
	cfg.Logger = h.log
	cfg.Clock = h.Clock
	cfg.Storage = n.Storage
	cfg.Transport = h.Net.NewTransport(n.ID, n.Addr)
	cfg.Bootstrap = bootstrap
	if bootstrap {
		for _, p := range h.Nodes {
			if p != n {
				cfg.Peers = append(cfg.Peers, cluster.Peer{ID: p.ID, Address: p.Addr})
			}
		}
	}
	if h.opts.Configure != nil {
		h.opts.Configure(&cfg)
	}
	c, err := cluster.New(cfg)
	if err != nil {
		h.t.Fatalf("start %s: %v", n.ID, err)
	}
	n.Cluster = c
}

// Close stops every running node.
func (h *Harness) Close() {
	for i := range h.Nodes {
		h.Stop(i)
	}
}

// Stop stops node i, keeping its storage, as a crash would.
func (h *Harness) Stop(i int) {
	n := h.Nodes[i]
	if n.Cluster == nil {
		return
	}
	if err := n.Cluster.Close(); err != nil {
		h.t.Logf("close %s: %v", n.ID, err)
	}
	n.Cluster = nil
}

// Restart starts a stopped node i again from its storage.
func (h *Harness) Restart(i int) {
	h.t.Helper()
	h.Stop(i)
	h.start(i, false)
}

// AddNode starts a new node without bootstrapping it; it joins once a
// member calls AddVoter with its ID and Addr. It returns the node's index.
func (h *Harness) AddNode() int {
	h.t.Helper()
	id := fmt.Sprintf("n%d", len(h.Nodes)+1)
	h.Nodes = append(h.Nodes, &Node{ID: id, Addr: "inmem-" + id, Storage: cluster.NewInmemStorage()})
	h.start(len(h.Nodes)-1, false)
	return len(h.Nodes) - 1
}

// Node returns the running cluster of node i.
func (h *Harness) Node(i int) *cluster.Cluster {
	h.t.Helper()
	if h.Nodes[i].Cluster == nil {
		h.t.Fatalf("node %s is stopped", h.Nodes[i].ID)
	}
	return h.Nodes[i].Cluster
}

// Index returns the index of the node with id.
func (h *Harness) Index(id string) int {
	h.t.Helper()
	for i, n := range h.Nodes {
		if n.ID == id {
			return i
		}
	}
	h.t.Fatalf("no node %q", id)
	return -1
}

// Partition cuts nodes (by index) off from the rest, both ways.
func (h *Harness) Partition(idx ...int) {
	var addrs []string
	for _, i := range idx {
		addrs = append(addrs, h.Nodes[i].Addr)
	}
	h.Net.Partition(addrs...)
}

// Heal restores every link.
func (h *Harness) Heal() { h.Net.Heal() }

// WaitLeader waits until one running node among idx (all nodes when idx is
// empty) leads and every one of them knows it, and returns its index.
func (h *Harness) WaitLeader(idx ...int) int {
	h.t.Helper()
	if len(idx) == 0 {
		for i := range h.Nodes {
			if h.Nodes[i].Cluster != nil {
				idx = append(idx, i)
			}
		}
	}
	leader := -1
	h.Eventually(10*time.Second, "a leader that all of the nodes agree on", func() bool {
		leader = -1
		for _, i := range idx {
			if h.Nodes[i].Cluster.IsLeader() {
				if leader >= 0 {
					return false
				}
				leader = i
			}
		}
		if leader < 0 {
			return false
		}
		for _, i := range idx {
			if id, _ := h.Nodes[i].Cluster.Leader(); id != h.Nodes[leader].ID {
				return false
			}
		}
		return true
	})
	return leader
}

// Follower returns the index of a running node other than leader.
func (h *Harness) Follower(leader int) int {
	for i, n := range h.Nodes {
		if i != leader && n.Cluster != nil {
			return i
		}
	}
	h.t.Fatal("no follower")
	return -1
}

// WaitApplied waits until every running node has applied index.
func (h *Harness) WaitApplied(index uint64) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range h.Nodes {
		if n.Cluster == nil {
			continue
		}
		if err := n.Cluster.FSM().WaitApplied(ctx, index); err != nil {
			h.t.Fatalf("%s did not apply index %d: %v", n.ID, index, err)
		}
	}
}

// Eventually polls cond every few milliseconds until it holds, failing the
// test after timeout. It waits for raft, which runs on real time.
func (h *Harness) Eventually(timeout time.Duration, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
