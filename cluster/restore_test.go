package cluster_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/cluster/audit"
	"github.com/coterie-mpc/coterie/cluster/clustertest"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/protocol"
)

// addKeyRecord records a key record sealed with kr under its own id.
func addKeyRecord(t *testing.T, ctx context.Context, c *cluster.Cluster, kr *keyring.Keyring, id string) {
	t.Helper()
	ct, err := kr.Encrypt(id, []byte("share of "+id))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddKeyRecord(ctx, cluster.Record{ID: id, OwnerID: "ws/u1", Sealed: ct}); err != nil {
		t.Fatal(err)
	}
}

// foreignState returns a one-member state of cluster id holding key
// record id sealed with kr.
func foreignState(t *testing.T, clusterID string, kr *keyring.Keyring, id string) []byte {
	t.Helper()
	f := cluster.NewFSM()
	pub, _, _ := ed25519.GenerateKey(nil)
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	policy := enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindSim, Measurement: []byte("m1"), AllowDebug: true}}}
	member := cluster.Member{ID: "x1", Address: "inmem-x1", IdentityKey: pub, Enclave: enclave.Identity{Kind: enclave.KindSim, Measurement: []byte("m1")}}
	ct, err := kr.Encrypt(id, []byte("share"))
	if err != nil {
		t.Fatal(err)
	}
	for i, cmd := range []*protocol.ClusterCommand{
		cluster.InitCommand(clusterID, policy, member),
		cluster.KeyRecordAddedCommand(cluster.Record{ID: id, OwnerID: "ws/u1", Sealed: ct}),
	} {
		cmd.Version, cmd.Node, cmd.ProposedAtUnixNano = 1, "x1", at.UnixNano()
		data, err := cluster.EncodeCommand(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if err, _ := f.Apply(&raft.Log{Index: uint64(i + 1), Data: data}).(error); err != nil {
			t.Fatal(err)
		}
	}
	b, err := f.EncodeState()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRestoreRefusals: a snapshot of another cluster, one whose records
// this keyring cannot open (another key of the same version, or a version
// it lacks), and one that does not decode are refused with a reason, on
// the leader, and change nothing; a follower refuses to run a restore.
func TestRestoreRefusals(t *testing.T) {
	nodes := newKeyNodes(t, "n1", "n2", "n3")
	h := clustertest.New(t, 3, clustertest.Options{Configure: nodes.configure})
	leader := h.WaitLeader()
	ctx := ctxT(t, 30*time.Second)
	lc := h.Node(leader)
	initMembers(t, ctx, h, nodes)
	addPresig(t, ctx, lc, nodes[h.Nodes[leader].ID].kr, "p1")

	other, _ := keyring.Generate()
	newer, _ := keyring.Generate()
	if _, err := newer.Rotate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		state      []byte
	}{
		{"another cluster", "the snapshot is from cluster c-other, this cluster is c-test", foreignState(t, "c-other", nodes["n1"].kr, "key-a")},
		{"another keyring", "does not open with this node's keyring", foreignState(t, "c-test", other, "key-a")},
		{"a version this keyring lacks", "sealed under keyring version 2, which this node's keyring does not hold", foreignState(t, "c-test", newer, "key-a")},
		{"not a state", "the snapshot's state", []byte("garbage")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, index, err := lc.FSM().EncodeStateAt()
			if err != nil {
				t.Fatal(err)
			}
			for _, dry := range []bool{true, false} {
				_, err := lc.Restore(ctx, tc.state, nil, dry)
				if !errors.Is(err, cluster.ErrRestoreRefused) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("dry run %v: got %v, want a refusal mentioning %q", dry, err, tc.want)
				}
			}
			after, afterIndex, _ := lc.FSM().EncodeStateAt()
			if !bytes.Equal(before, after) || index != afterIndex {
				t.Fatalf("a refused restore changed the state (index %d -> %d)", index, afterIndex)
			}
		})
	}
	good, _ := lc.FSM().EncodeState()
	if _, err := h.Node(h.Follower(leader)).Restore(ctx, good, nil, false); !errors.Is(err, cluster.ErrNotLeader) {
		t.Fatalf("restore on a follower: %v, want ErrNotLeader", err)
	}
}

// TestRestoreBurnsAndReleases saves a state with available and reserved
// presignatures and a claimed request, goes on (the reservation completes,
// a member is added, a request is claimed, a presignature added), then
// restores the saved state: on every node no presignature is available or
// reserved any more, no request is claimed, the live member table and
// high-water marks stay, the snapshot's key record is back, and new
// presignatures are admitted again.
func TestRestoreBurnsAndReleases(t *testing.T) {
	nodes := newKeyNodes(t, "n1", "n2", "n3")
	h := clustertest.New(t, 3, clustertest.Options{Configure: nodes.configure})
	leader := h.WaitLeader()
	ctx := ctxT(t, 30*time.Second)
	lc := h.Node(leader)
	lid := h.Nodes[leader].ID
	kr := nodes[lid].kr
	initMembers(t, ctx, h, nodes)
	for _, id := range []string{"p1", "p2", "p3"} {
		addPresig(t, ctx, lc, kr, id)
	}
	addKeyRecord(t, ctx, lc, kr, "key-a")
	if err := lc.Claim(ctx, "r1", "ws/u1"); err != nil {
		t.Fatal(err)
	}
	if err := lc.Reserve(ctx, "r1", cluster.PresignatureRef{KeyID: "k1", ID: "p1"}); err != nil {
		t.Fatal(err)
	}
	saved, savedIndex, err := lc.FSM().EncodeStateAt()
	if err != nil {
		t.Fatal(err)
	}

	// The cluster goes on: p1 is used, p2 reserved, p4 added, r2 claimed.
	if err := lc.Complete(ctx, "r1", cluster.OutcomeSigned, ""); err != nil {
		t.Fatal(err)
	}
	if err := lc.Claim(ctx, "r2", "ws/u1"); err != nil {
		t.Fatal(err)
	}
	if err := lc.Reserve(ctx, "r2", cluster.PresignatureRef{KeyID: "k1", ID: "p2"}); err != nil {
		t.Fatal(err)
	}
	addPresig(t, ctx, lc, kr, "p4")
	high := lc.FSM().HighWater("k1", lid)
	members := len(lc.Members())

	rep, err := lc.Restore(ctx, saved, nil, true)
	if err != nil || !rep.DryRun || rep.Checked != 1 || rep.SnapshotIndex != savedIndex {
		t.Fatalf("dry run: %+v, %v", rep, err)
	}
	if st, _ := lc.FSM().EncodeState(); lc.FSM().PoolDepth("k1") != 2 || bytes.Equal(st, saved) {
		t.Fatal("a dry run changed the state")
	}
	rep, err = lc.Restore(ctx, saved, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	// Live: p2 reserved, p3 and p4 available; r2 claimed.
	if rep.Burned != 3 || rep.Released != 1 || rep.DryRun {
		t.Fatalf("report %+v, want 3 burned and 1 released", rep)
	}
	want, _ := lc.FSM().EncodeState()
	for i := range h.Nodes {
		f := h.Node(i).FSM()
		h.Eventually(10*time.Second, h.Nodes[i].ID+" installs the restored state", func() bool {
			got, _ := f.EncodeState()
			return bytes.Equal(got, want)
		})
		for _, p := range f.Presignatures() {
			if p.Status == cluster.PresignatureAvailable || p.Status == cluster.PresignatureReserved {
				t.Fatalf("%s: presignature %s is %v after the restore", h.Nodes[i].ID, p.ID, p.Status)
			}
		}
		for _, r := range f.Requests() {
			if r.Status == cluster.StatusClaimed {
				t.Fatalf("%s: request %s is still claimed by %s", h.Nodes[i].ID, r.ID, r.Owner)
			}
		}
		if _, ok := f.KeyRecord("key-a"); !ok || len(f.Members()) != members || f.HighWater("k1", lid) != high {
			t.Fatalf("%s: key record %v, %d members (want %d), high-water %d (want %d)",
				h.Nodes[i].ID, ok, len(f.Members()), members, f.HighWater("k1", lid), high)
		}
	}
	// The restore is in the audit log, whose chain it continues.
	page := lc.Audit(0, 0)
	if err := audit.Verify(page.Anchor, page.Entries); err != nil {
		t.Fatalf("the audit chain after the restore: %v", err)
	}
	if last := page.Entries[len(page.Entries)-1]; last.Kind != audit.KindRestored || last.Number != savedIndex ||
		!strings.Contains(last.Detail, "burned=3 released=1") {
		t.Fatalf("last audit entry %+v, want the restore of index %d", last, savedIndex)
	}
	if r, _ := lc.Request("r1"); r.Status != cluster.StatusCompleted {
		t.Fatalf("r1 is %v, want the live completion kept", r.Status)
	}
	// The pool refills by the normal path, and the cluster goes on.
	addPresig(t, ctx, lc, kr, "p5")
	if err := lc.Claim(ctx, "r2", "ws/u1"); err != nil {
		t.Fatal(err)
	}
	if err := lc.Reserve(ctx, "r2", cluster.PresignatureRef{KeyID: "k1"}); err != nil {
		t.Fatal(err)
	}
	if info, _ := lc.Presignature("k1", "p5"); info.Status != cluster.PresignatureReserved {
		t.Fatalf("p5 is %v after the restore, want reserved by r2", info.Status)
	}
}
