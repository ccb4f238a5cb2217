package cluster_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/cluster/clustertest"
)

// TestFollowersReportProgress checks that the leader learns each
// follower's applied index from the follower's own reports, and that a
// follower shows no one's.
func TestFollowersReportProgress(t *testing.T) {
	h := clustertest.New(t, 3, clustertest.Options{})
	leader := h.WaitLeader()
	ctx := ctxT(t, 10*time.Second)
	if err := h.Node(h.Follower(leader)).Claim(ctx, "r1", "u1"); err != nil {
		t.Fatal(err)
	}
	lc := h.Node(leader)
	want := lc.AppliedIndex()
	h.WaitApplied(want)
	h.Eventually(10*time.Second, "both followers' reports of the claim applied", func() bool {
		h.Clock.Advance(time.Second)
		reports := lc.Progress()
		for i, n := range h.Nodes {
			if i == leader {
				if _, ok := reports[n.ID]; ok {
					t.Fatalf("the leader reported to itself: %+v", reports)
				}
				continue
			}
			if p, ok := reports[n.ID]; !ok || p.AppliedIndex < want || p.Term == 0 || p.ReportedAt.IsZero() {
				return false
			}
		}
		return true
	})
	if p := h.Node(h.Follower(leader)).Progress(); len(p) != 0 {
		t.Fatalf("a follower shows reports: %+v", p)
	}
}

// TestLeaderJudgesRemoval cuts a follower off and asks the other
// follower to remove the leader and to check its own departure: only the
// leader sees that the cut-off voter is down, so both are refused there,
// though the asking follower would count every voter as up. After the
// partition heals, the check passes and nothing was removed.
func TestLeaderJudgesRemoval(t *testing.T) {
	h := clustertest.New(t, 3, clustertest.Options{})
	leader := h.WaitLeader()
	ctx := ctxT(t, 30*time.Second)
	var followers []int
	for i := range h.Nodes {
		if i != leader {
			followers = append(followers, i)
		}
	}
	asker, cut := h.Node(followers[0]), h.Nodes[followers[1]].ID
	lc := h.Node(leader)

	h.Partition(followers[1])
	h.Eventually(10*time.Second, "the leader to see the cut-off follower silent", func() bool {
		_, silent := lc.Silent()[cut]
		return silent
	})
	err := asker.RemoveMember(ctx, h.Nodes[leader].ID)
	if !errors.Is(err, cluster.ErrMember) || !strings.Contains(err.Error(), "1 of the other 2 voters are reachable from the leader") {
		t.Fatalf("remove the leader through a follower while a voter is cut off: got %v, want a refusal", err)
	}
	err = asker.CheckRemoval(ctx, asker.NodeID())
	if !errors.Is(err, cluster.ErrMember) || !strings.Contains(err.Error(), "short of a quorum of 2") {
		t.Fatalf("a follower's departure check while a voter is cut off: got %v, want a refusal", err)
	}

	h.Heal()
	h.Eventually(10*time.Second, "the leader to hear from the follower again", func() bool {
		_, silent := lc.Silent()[cut]
		return !silent
	})
	if err := asker.CheckRemoval(ctx, asker.NodeID()); err != nil {
		t.Fatalf("departure check with every voter up: %v", err)
	}
	if servers, err := lc.Servers(); err != nil || len(servers) != 3 {
		t.Fatalf("servers %+v %v: a check removed something", servers, err)
	}
}
