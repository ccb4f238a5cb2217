package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestClusterPartition runs three real nodes, each in its own network
// namespace, under load, and cuts one off from the other two (both
// directions; it still reaches the workspace): first a follower that owns
// requests, then the leader. While it is cut off, the other two take over
// its requests after the owner timeout and sign new ones, and the cut node
// stops serving, and the other follower may not leave (the leader judges
// the quorum). Then the partition heals and the node serves again. At
// the end every request is signed once, each presignature is used once in
// the FSM and in the workspace's ledger, and every signature used a
// presignature whose reservation committed (I6): the one of the attempt
// that completed, or one the cut node had reserved before it was cut off.
func TestClusterPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	c := newTestClusterOn(t, 1, 3, newTestNet(t, 3))
	c.pair(0)

	ids := c.submit(8, "follower cut off")
	_, followers := c.leader()
	victim, owned, ids := c.mustOwnerOf(followers, ids)
	c.partition(victim, ids, owned, func() {
		// The other follower may not leave: the leader sees that without
		// it only the leader itself would be up, though the follower,
		// which sees no heartbeats, would count the cut node as up.
		for _, n := range followers {
			if n == victim {
				continue
			}
			_, err := n.ac.Leave(c.ctx())
			if err == nil || !strings.Contains(err.Error(), "short of a quorum") {
				t.Fatalf("%s's leave while %s is cut off: %v, want a refusal by the leader", n.id, victim.id, err)
			}
			if !n.ac.Healthy(c.ctx()) {
				t.Fatalf("a refused leave stopped %s serving", n.id)
			}
		}
	})

	ids = c.submit(8, "leader cut off")
	lead, _ := c.leader()
	_, owned = c.ownerOf([]*clusterNode{lead}, ids, 30*time.Second)
	c.partition(lead, ids, owned, func() {})

	c.checkInvariants()
}

// partition cuts n off while it owns owned (of ids), checks that the
// others resume those and sign new requests while n stops serving, runs
// during, heals it, and waits until n serves again and has caught up, and
// every request of ids and the new ones is done.
func (c *testCluster) partition(n *clusterNode, ids, owned []string, during func()) {
	t := c.t
	i := slices.Index(c.nodes, n)
	cutAt := time.Now()
	c.net.cut(i)
	n.cut = true
	t.Logf("cut off %s owning %v; resumed elsewhere after %v", n.id, owned, c.resumed(n, owned, cutAt))
	waitFor(t, time.Minute, n.id+" to stop serving while cut off", func() bool { return !n.ac.Healthy(c.ctx()) }, n.proc)

	during()
	all := append(slices.Clone(ids), c.submit(4, "while "+n.id+" is cut off")...)
	c.waitDone(all, 3*time.Minute)

	c.net.heal(i)
	waitFor(t, 2*time.Minute, n.id+" to serve again after the partition healed", func() bool { return n.ac.Healthy(c.ctx()) }, c.procs()...)
	c.waitMembers(3)
	// It has rejoined once its replica holds what the leader committed
	// when it came back; until then its view stays out of the checks.
	lead, _ := c.leader()
	st, err := lead.ac.Status(c.ctx())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, n.id+" to catch up", func() bool {
		mine, err := n.ac.Status(c.ctx())
		return err == nil && mine.Raft.AppliedIndex >= st.Raft.CommitIndex
	}, c.procs()...)
	n.cut = false
}
