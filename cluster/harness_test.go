package cluster_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/cluster/clustertest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// sealed returns a seal function for Cluster.AddPresignatures that
// numbers ids from the first number it is given.
func sealed(ids ...string) func(uint64) ([]cluster.SealedPresignature, error) {
	return func(first uint64) ([]cluster.SealedPresignature, error) {
		var out []cluster.SealedPresignature
		for i, id := range ids {
			out = append(out, cluster.SealedPresignature{ID: id, OriginSeq: first + uint64(i), Sealed: []byte("ct:" + id)})
		}
		return out, nil
	}
}

func TestFollowerForwardsProposals(t *testing.T) {
	h := clustertest.New(t, 3, clustertest.Options{})
	leader := h.WaitLeader()
	f1 := h.Follower(leader)
	ctx := ctxT(t, 10*time.Second)

	fol := h.Node(f1)
	if err := fol.Claim(ctx, "r1", "u1"); err != nil {
		t.Fatalf("claim from follower: %v", err)
	}
	// Read-your-writes on the follower, with no waiting.
	if owner, ok := fol.Owner("r1"); !ok || owner != fol.NodeID() {
		t.Fatalf("follower sees owner %q, %v right after its claim", owner, ok)
	}
	// Typed errors survive the forwarding path.
	var other int
	for i := range h.Nodes {
		if i != leader && i != f1 {
			other = i
		}
	}
	err := h.Node(other).Claim(ctx, "r1", "u1")
	if !errors.Is(err, cluster.ErrClaimed) {
		t.Fatalf("second claim from another follower: got %v, want ErrClaimed", err)
	}
	if err := h.Node(leader).Claim(ctx, "r1", "u1"); !errors.Is(err, cluster.ErrClaimed) {
		t.Fatalf("claim on the leader: got %v, want ErrClaimed", err)
	}
	// Garbage is refused before it reaches the log.
	if _, err := fol.Propose(ctx, cluster.ReleaseCommand("", "")); !errors.Is(err, cluster.ErrBadCommand) {
		t.Fatalf("bad command: got %v, want ErrBadCommand", err)
	}
	// Every replica converges on the same state.
	h.WaitApplied(h.Node(leader).AppliedIndex())
	want, _ := h.Node(leader).FSM().EncodeState()
	for i := range h.Nodes {
		got, _ := h.Node(i).FSM().EncodeState()
		if string(got) != string(want) {
			t.Fatalf("node %d state differs from the leader's", i)
		}
	}
}

func TestClaimRaceHasOneWinner(t *testing.T) {
	h := clustertest.New(t, 3, clustertest.Options{})
	h.WaitLeader()
	ctx := ctxT(t, 10*time.Second)
	const requests, perNode = 5, 3
	for r := range requests {
		req := string(rune('a' + r))
		var wg sync.WaitGroup
		var mu sync.Mutex
		winners := map[string]int{}
		for i := range h.Nodes {
			for range perNode {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := h.Node(i).Claim(ctx, req, "u1")
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						winners[h.Nodes[i].ID]++
					case !errors.Is(err, cluster.ErrClaimed):
						t.Errorf("claim %s on %s: %v", req, h.Nodes[i].ID, err)
					}
				}()
			}
		}
		wg.Wait()
		// One node wins; its own repeated claims succeed too (a no-op).
		if len(winners) != 1 {
			t.Fatalf("request %s: winners %v, want one node", req, winners)
		}
		for node := range winners {
			if owner, _ := h.Node(h.Index(node)).Owner(req); owner != node {
				t.Fatalf("request %s: owner %q, winner %q", req, owner, node)
			}
		}
	}
}

func TestLeaderFailover(t *testing.T) {
	h := clustertest.New(t, 3, clustertest.Options{})
	old := h.WaitLeader()
	ctx := ctxT(t, 15*time.Second)
	if err := h.Node(old).AddPresignatures(ctx, "k1", "", sealed("p1", "p2")); err != nil {
		t.Fatal(err)
	}
	if err := h.Node(old).Claim(ctx, "r1", "u1"); err != nil {
		t.Fatal(err)
	}
	h.Stop(old)
	var rest []int
	for i := range h.Nodes {
		if i != old {
			rest = append(rest, i)
		}
	}
	leader := h.WaitLeader(rest...)
	if leader == old {
		t.Fatal("stopped node still leads")
	}
	fol := h.Follower(leader)
	if fol == old {
		for _, i := range rest {
			if i != leader {
				fol = i
			}
		}
	}
	// The committed state survived (once the new leader commits in its own
	// term, the followers learn it), and followers propose through the new
	// leader. The old leader is gone, so the new one releases its claim.
	h.Eventually(5*time.Second, "r1 to survive the failover, released", func() bool {
		info, ok := h.Node(fol).Request("r1")
		_, owned := h.Node(fol).Owner("r1")
		return ok && info.LastOwner == h.Nodes[old].ID && !owned
	})
	if err := h.Node(fol).Claim(ctx, "r2", "u1"); err != nil {
		t.Fatalf("claim after failover: %v", err)
	}
	if err := h.Node(fol).Reserve(ctx, "r2", cluster.PresignatureRef{KeyID: "k1", ID: "p2"}); err != nil {
		t.Fatalf("reserve after failover: %v", err)
	}
	// The old leader comes back as a follower and catches up.
	h.Restart(old)
	h.WaitApplied(h.Node(leader).AppliedIndex())
	if info, _ := h.Node(old).Request("r2"); len(info.Reserved) != 1 || info.Reserved[0].ID != "p2" {
		t.Fatalf("restarted node sees r2 as %+v", info)
	}
	if err := h.Node(old).Complete(ctx, "r1", cluster.OutcomeSigned, ""); !errors.Is(err, cluster.ErrNotOwner) {
		t.Fatalf("complete of a released request from the restarted node: got %v, want ErrNotOwner", err)
	}
}

// TestMinorityCannotReserve checks I6: a node cut off from the quorum,
// follower or deposed leader, commits no reservation.
func TestMinorityCannotReserve(t *testing.T) {
	h := clustertest.New(t, 3, clustertest.Options{})
	leader := h.WaitLeader()
	ctx := ctxT(t, 20*time.Second)
	lc := h.Node(leader)
	if err := lc.AddPresignatures(ctx, "k1", "", sealed("p1", "p2", "p3")); err != nil {
		t.Fatal(err)
	}
	fol := h.Follower(leader)
	for _, i := range []int{leader, fol} {
		if err := h.Node(i).Claim(ctx, "r-"+h.Nodes[i].ID, "u1"); err != nil {
			t.Fatal(err)
		}
	}

	// A follower alone: no leader to forward to.
	h.Partition(fol)
	short, cancel := context.WithTimeout(ctx, time.Second)
	err := h.Node(fol).Reserve(short, "r-"+h.Nodes[fol].ID, cluster.PresignatureRef{KeyID: "k1", ID: "p1"})
	cancel()
	if err == nil || !(errors.Is(err, cluster.ErrNotLeader) || errors.Is(err, cluster.ErrUncertain)) {
		t.Fatalf("isolated follower's reserve: got %v, want ErrNotLeader", err)
	}
	h.Heal()
	h.WaitLeader()

	// The leader alone: it appends, but cannot commit, and steps down.
	leader = h.WaitLeader()
	h.Partition(leader)
	short, cancel = context.WithTimeout(ctx, 2*time.Second)
	err = h.Node(leader).Reserve(short, "r-"+h.Nodes[leader].ID, cluster.PresignatureRef{KeyID: "k1", ID: "p2"})
	cancel()
	if err == nil {
		t.Fatal("isolated leader committed a reservation")
	}
	t.Logf("isolated leader's reserve: %v", err)
	var majority []int
	for i := range h.Nodes {
		if i != leader {
			majority = append(majority, i)
		}
	}
	newLeader := h.WaitLeader(majority...)
	// The majority goes on; it can even hand out p2.
	if err := h.Node(newLeader).Claim(ctx, "r-major", "u1"); err != nil {
		t.Fatal(err)
	}
	if err := h.Node(newLeader).Reserve(ctx, "r-major", cluster.PresignatureRef{KeyID: "k1", ID: "p2"}); err != nil {
		t.Fatalf("majority reserve of p2: %v", err)
	}
	h.Heal()
	h.WaitLeader()
	h.WaitApplied(h.Node(newLeader).AppliedIndex())
	for i := range h.Nodes {
		for _, id := range []string{"r-" + h.Nodes[fol].ID, "r-" + h.Nodes[leader].ID} {
			if info, _ := h.Node(i).Request(id); len(info.Reserved) != 0 {
				t.Fatalf("%s sees a reservation for %s made in a minority: %+v", h.Nodes[i].ID, id, info)
			}
		}
		if p, _ := h.Node(i).Presignature("k1", "p2"); p.RequestID != "r-major" {
			t.Fatalf("%s sees p2 reserved by %q", h.Nodes[i].ID, p.RequestID)
		}
	}
}

// TestSilentOwnerIsReleased checks step 7 of the path: the leader releases
// a node that stays silent for OwnerTimeout, its unfinished requests become
// claimable, and its reserved presignatures burn. The silent node is a
// follower, or the leader itself (then the new leader releases it).
func TestSilentOwnerIsReleased(t *testing.T) {
	for _, victimLeads := range []bool{false, true} {
		name := map[bool]string{false: "follower", true: "leader"}[victimLeads]
		t.Run(name, func(t *testing.T) { testSilentOwner(t, victimLeads) })
	}
}

// threeWithVictim starts three nodes and picks the one a test will
// silence: a follower, or the leader.
func threeWithVictim(t *testing.T, victimLeads bool) (h *clustertest.Harness, victim int, ctx context.Context) {
	h = clustertest.New(t, 3, clustertest.Options{})
	leader := h.WaitLeader()
	victim = h.Follower(leader)
	if victimLeads {
		victim = leader
	}
	return h, victim, ctxT(t, 30*time.Second)
}

func testSilentOwner(t *testing.T, victimLeads bool) {
	h, victim, ctx := threeWithVictim(t, victimLeads)
	vc, vid := h.Node(victim), h.Nodes[victim].ID
	if err := vc.AddPresignatures(ctx, "k1", "", sealed("p1", "p2")); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"r1", "r2"} {
		if err := vc.Claim(ctx, r, "u1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := vc.Reserve(ctx, "r1", cluster.PresignatureRef{KeyID: "k1", ID: "p1"}); err != nil {
		t.Fatal(err)
	}
	if err := vc.Complete(ctx, "r2", cluster.OutcomeApproved, ""); err != nil {
		t.Fatal(err)
	}
	var majority []int
	for i := range h.Nodes {
		if i != victim {
			majority = append(majority, i)
		}
	}
	h.WaitApplied(vc.AppliedIndex())
	watcher := h.Node(majority[0])
	events, cancel := watcher.FSM().Subscribe(16)
	defer cancel()

	h.Partition(victim)
	// Whoever leads the majority (a new leader when the victim led) notices.
	h.Eventually(10*time.Second, "the leader to notice the silent owner", func() bool {
		for _, i := range majority {
			if _, ok := h.Node(i).Silent()[vid]; ok && h.Node(i).IsLeader() {
				return true
			}
		}
		return false
	})
	// Well before OwnerTimeout, nothing happens.
	h.Clock.Advance(time.Second)
	if owner, _ := watcher.Owner("r1"); owner != vid {
		t.Fatalf("released before OwnerTimeout: owner %q", owner)
	}
	h.Eventually(10*time.Second, "the release of the silent owner", func() bool {
		h.Clock.Advance(200 * time.Millisecond)
		_, owned := watcher.Owner("r1")
		return !owned
	})
	select {
	case ev := <-events:
		if ev.Kind != cluster.EventReleased || ev.RequestID != "r1" || ev.Node != vid {
			t.Fatalf("event %+v, want released r1", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no released event")
	}
	if un := watcher.Unclaimed(); len(un) != 1 || un[0].ID != "r1" || un[0].APIUserID != "u1" {
		t.Fatalf("unclaimed: %+v", un)
	}
	if r2, _ := watcher.Request("r2"); r2.Status != cluster.StatusCompleted {
		t.Fatalf("completed request changed by the release: %+v", r2)
	}
	// Another node claims r1; the burned presignature stays burned.
	if err := watcher.Claim(ctx, "r1", "u1"); err != nil {
		t.Fatalf("claim of released request: %v", err)
	}
	err := watcher.Reserve(ctx, "r1", cluster.PresignatureRef{KeyID: "k1", ID: "p1"})
	if !errors.Is(err, cluster.ErrPresignatureBurned) {
		t.Fatalf("reserve of burned p1: got %v, want ErrPresignatureBurned", err)
	}
	if err := watcher.Reserve(ctx, "r1", cluster.PresignatureRef{KeyID: "k1", ID: "p2"}); err != nil {
		t.Fatal(err)
	}
	// The old owner comes back: it has lost r1.
	h.Heal()
	h.WaitLeader()
	err = vc.Complete(ctx, "r1", cluster.OutcomeSigned, "")
	if !errors.Is(err, cluster.ErrNotOwner) {
		t.Fatalf("old owner's complete: got %v, want ErrNotOwner", err)
	}
}

// TestGoneOwnerIsReleasedAtOnce checks the fast path of step 7: an owner
// whose process is gone (its transport closed, as a refused connection
// shows on the network) is released as soon as a heartbeat to it fails,
// with no wait for OwnerTimeout: the test never advances the watch's
// clock. TestSilentOwnerIsReleased shows that a node only cut off waits.
func TestGoneOwnerIsReleasedAtOnce(t *testing.T) {
	for _, victimLeads := range []bool{false, true} {
		name := map[bool]string{false: "follower", true: "leader"}[victimLeads]
		t.Run(name, func(t *testing.T) {
			h, victim, ctx := threeWithVictim(t, victimLeads)
			vc, vid := h.Node(victim), h.Nodes[victim].ID
			if err := vc.Claim(ctx, "r1", "u1"); err != nil {
				t.Fatal(err)
			}
			h.WaitApplied(vc.AppliedIndex())
			var watcher *cluster.Cluster
			for i := range h.Nodes {
				if i != victim {
					watcher = h.Node(i)
				}
			}
			h.Stop(victim)
			h.Eventually(10*time.Second, "the release of the gone owner", func() bool {
				_, owned := watcher.Owner("r1")
				return !owned
			})
			if un := watcher.Unclaimed(); len(un) != 1 || un[0].ID != "r1" {
				t.Fatalf("unclaimed after %s was released: %+v", vid, un)
			}
		})
	}
}

func TestJoinAndLeave(t *testing.T) {
	h := clustertest.New(t, 3, clustertest.Options{})
	leader := h.WaitLeader()
	ctx := ctxT(t, 15*time.Second)
	if err := h.Node(leader).AddPresignatures(ctx, "k1", "", sealed("p1")); err != nil {
		t.Fatal(err)
	}
	n4 := h.AddNode()
	fol := h.Follower(leader)
	// Joining goes through the leader even when a follower asks.
	if err := h.Node(fol).AddVoter(ctx, h.Nodes[n4].ID, h.Nodes[n4].Addr); err != nil {
		t.Fatalf("add voter via follower: %v", err)
	}
	h.WaitApplied(h.Node(leader).AppliedIndex())
	if depth := h.Node(n4).PoolDepth("k1"); depth != 1 {
		t.Fatalf("new voter's pool depth %d, want 1", depth)
	}
	if err := h.Node(n4).Claim(ctx, "r1", "u1"); err != nil {
		t.Fatalf("claim from the new voter: %v", err)
	}
	servers, err := h.Node(leader).Servers()
	if err != nil || len(servers) != 4 {
		t.Fatalf("servers %+v, %v", servers, err)
	}
	// Leaving: the removed node's requests are released by the owner watch
	// once it has been out of the configuration for OwnerTimeout.
	if err := h.Node(fol).RemoveServer(ctx, h.Nodes[n4].ID); err != nil {
		t.Fatalf("remove server via follower: %v", err)
	}
	h.Stop(n4)
	leader = h.WaitLeader()
	lc := h.Node(leader)
	h.Eventually(10*time.Second, "release of the removed node's request", func() bool {
		h.Clock.Advance(500 * time.Millisecond)
		_, owned := lc.Owner("r1")
		return !owned
	})
	if servers, _ := lc.Servers(); len(servers) != 3 {
		t.Fatalf("servers after removal: %+v", servers)
	}
}

func TestLeadershipTransfer(t *testing.T) {
	h := clustertest.New(t, 3, clustertest.Options{})
	leader := h.WaitLeader()
	if err := h.Node(leader).TransferLeadership(); err != nil {
		t.Fatal(err)
	}
	next := h.WaitLeader()
	if next == leader {
		t.Fatal("leadership did not move")
	}
	if err := h.Node(h.Follower(next)).TransferLeadership(); err == nil {
		t.Fatal("a follower transferred leadership")
	}
}
