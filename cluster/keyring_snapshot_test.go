package cluster_test

import (
	"slices"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/cluster/clustertest"
)

// TestRotateKeyringThroughSnapshot: a member is down while the keyring
// rotates, and the others snapshot and compact their logs past the
// rotation, so the member can only catch up through a snapshot. Restoring
// it, the member takes its copy in from the snapshot, seals it and
// reports the version; until then nothing is re-encrypted, and after it
// the old records move and open under the new version on every member.
func TestRotateKeyringThroughSnapshot(t *testing.T) {
	nodes := newKeyNodes(t, "n1", "n2", "n3")
	h := clustertest.New(t, 3, clustertest.Options{Configure: func(cfg *cluster.Config) {
		nodes.configure(cfg)
		// A snapshot keeps one entry of the log: one taken after the
		// rotation leaves nothing of it to replay.
		cfg.TrailingLogs = 1
	}})
	leader := h.WaitLeader()
	ctx := ctxT(t, 30*time.Second)
	lc := h.Node(leader)
	initMembers(t, ctx, h, nodes)
	addPresig(t, ctx, lc, nodes[h.Nodes[leader].ID].kr, "p-old")

	down := h.Follower(leader)
	downID := h.Nodes[down].ID
	h.Stop(down)
	rot, err := lc.RotateKeyring(ctx)
	if err != nil || rot.Version != 2 || !slices.Contains(rot.Members, downID) {
		t.Fatalf("rotation %+v, %v; want version 2 wrapped to %s too", rot, err, downID)
	}
	// Entries after the rotation, then a snapshot on each running member.
	addPresig(t, ctx, lc, nodes[h.Nodes[leader].ID].kr, "p-new")
	h.WaitApplied(lc.AppliedIndex())
	for i, n := range h.Nodes {
		if n.Cluster == nil {
			continue
		}
		if err := n.Cluster.Snapshot(); err != nil {
			t.Fatal(err)
		}
		if got := rotationEntries(t, h.Nodes[i].Storage); len(got) != 0 {
			t.Fatalf("%s: the log still holds the rotation after the snapshot", n.ID)
		}
	}
	// The running members report their adoption on their own time; until
	// they have, they are waited for too. Nothing moves meanwhile.
	h.Eventually(10*time.Second, "a reseal waiting for "+downID+" alone", func() bool {
		res, err := lc.ResealBatch(ctx, nil, 10)
		if err != nil || res.Moved != 0 {
			t.Fatalf("reseal with %s down = %+v, %v; want nothing moved", downID, res, err)
		}
		return slices.Equal(res.Waiting, []string{downID})
	})

	h.Restart(down)
	h.WaitLeader()
	k := nodes[downID]
	h.Eventually(10*time.Second, downID+" holds and sealed version 2", func() bool {
		return k.kr.Version() == 2 && slices.Contains(k.savedVersions(), 2)
	})
	snaps, err := h.Nodes[down].Storage.Snapshots.List()
	if err != nil || len(snaps) == 0 {
		t.Fatalf("%s caught up without installing a snapshot (%v)", downID, err)
	}
	h.Eventually(10*time.Second, "every member reported version 2", func() bool {
		st := lc.KeyringState()
		return len(st.Reached()) == 3 && len(st.Pending) == 0
	})

	res, err := lc.ResealBatch(ctx, nil, 10)
	if err != nil || res.Moved != 1 || res.Left != 0 {
		t.Fatalf("reseal = %+v, %v; want the old presignature moved", res, err)
	}
	h.WaitApplied(lc.AppliedIndex())
	dc := h.Node(down)
	if v := presigVersion(t, dc, "p-old"); v != 2 {
		t.Fatalf("%s: old presignature under version %d, want 2", downID, v)
	}
	info, _ := dc.Presignature("k1", "p-old")
	rid := cluster.PresignatureRecordID("k1", info.Origin, info.OriginSeq, "p-old")
	if pt, err := k.kr.Decrypt(rid, info.Sealed); err != nil || string(pt) != "share p-old" {
		t.Fatalf("%s: the resealed presignature opens to %q, %v", downID, pt, err)
	}
}
