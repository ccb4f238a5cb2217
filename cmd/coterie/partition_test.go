package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/node"
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
	committed := map[string][]string{} // request: presignature ids the cut node had reserved

	ids := c.submit(8, "follower cut off")
	_, followers := c.leader()
	victim, owned, ids := c.mustOwnerOf(followers, ids)
	c.partition(victim, ids, owned, committed, func() {
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
	c.partition(lead, ids, owned, committed, func() {})

	c.checkInvariants()
	c.checkCommittedReservations(committed)
}

// partition cuts n off while it owns owned (of ids), checks that the
// others resume those and sign new requests while n stops serving, runs
// during, records in committed the reservations n's replica holds for its
// requests just before the partition heals, heals it, and waits until n
// serves again and has caught up, and every request of ids and the new
// ones is done.
func (c *testCluster) partition(n *clusterNode, ids, owned []string, committed map[string][]string, during func()) {
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

	// n's replica can gain no commit while it is cut off, so what it shows
	// now is every reservation it made that committed.
	for _, id := range all {
		r, err := n.ac.Request(c.ctx(), id)
		switch {
		case errors.Is(err, node.ErrNoRequest):
			continue
		case err != nil:
			t.Fatalf("%s's view of %s: %v", n.id, id, err)
		}
		if r.Owner == n.id {
			for _, ref := range r.Reserved {
				committed[id] = append(committed[id], presignID(ref))
			}
		}
	}
	t.Logf("%s held committed reservations for %d requests when the partition healed", n.id, len(committed))

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

// checkCommittedReservations checks I6 on the workspace's ledger: each
// signature's presignature was reserved for its request by a commit,
// either the reservation of the attempt that completed (in the cluster's
// records) or one that a cut-off node had committed before it was cut off
// (committed). A node that signed after losing its ownership without such
// a reservation would show up as a presignature reserved for neither.
func (c *testCluster) checkCommittedReservations(committed map[string][]string) {
	t := c.t
	n := c.serving()
	if n == nil {
		t.Fatal("no node serves")
	}
	st := c.states()
	for _, id := range c.ids {
		r, err := n.ac.Request(c.ctx(), id)
		if err != nil {
			t.Fatal(err)
		}
		allowed := slices.Clone(committed[id])
		for _, ref := range r.Reserved {
			allowed = append(allowed, presignID(ref))
		}
		for _, sig := range st[id].GetSignatures() {
			if !slices.Contains(allowed, sig.GetPresignId()) {
				t.Errorf("%s signed with presignature %s, reserved for it by no commit (committed: %v)", id, sig.GetPresignId(), allowed)
			}
		}
	}
}

// presignID returns the presignature id of a RequestListing.Reserved entry
// (key/id, where the key id holds slashes too), the id the workspace's
// ledger records.
func presignID(ref string) string {
	return ref[strings.LastIndex(ref, "/")+1:]
}
