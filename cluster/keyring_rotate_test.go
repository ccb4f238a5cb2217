package cluster_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/cluster/clustertest"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/enclavetest"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/protocol"
)

// keyNode is one harness node's keys: its identity and keyring, the
// versions its SaveKeyring sealed, and how many saves are still to fail.
type keyNode struct {
	identity ed25519.PrivateKey
	kr       *keyring.Keyring
	mu       sync.Mutex
	saved    []uint32
	failures int
}

func (k *keyNode) savedVersions() []uint32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.saved)
}

func (k *keyNode) save(kr *keyring.Keyring) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.failures > 0 {
		k.failures--
		return errors.New("test: disk full")
	}
	k.saved = append(k.saved, kr.Version())
	return nil
}

// keyNodes are the harness nodes' keys, by node id.
type keyNodes map[string]*keyNode

// newKeyNodes gives each node a fresh identity and the same first keyring,
// each opened from the one sealed copy as a joined node's would be.
func newKeyNodes(t *testing.T, ids ...string) keyNodes {
	t.Helper()
	first, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	sealer := enclavetest.NewMachine(t).Enclave(t.TempDir(), nil)
	sealedFirst, err := first.MarshalSealed(sealer)
	if err != nil {
		t.Fatal(err)
	}
	nodes := keyNodes{}
	for _, id := range ids {
		_, priv, _ := ed25519.GenerateKey(nil)
		kr, err := keyring.Open(sealer, sealedFirst)
		if err != nil {
			t.Fatal(err)
		}
		nodes[id] = &keyNode{identity: priv, kr: kr}
	}
	return nodes
}

// configure is a harness Configure: the node rotates and takes in
// versions with its keys.
func (nodes keyNodes) configure(cfg *cluster.Config) {
	k := nodes[cfg.NodeID]
	cfg.Identity, cfg.Keyring, cfg.SaveKeyring = k.identity, k.kr, k.save
}

// TestRotateKeyring rotates the keyring of a 3-member cluster while one
// member is down, after a fourth was removed: every current member, the
// one that was down included once it catches up, takes in the version and
// seals it; new presignatures use it; the old ones are resealed under it;
// and no copy in the raft log opens for the removed member.
func TestRotateKeyring(t *testing.T) {
	nodes := newKeyNodes(t, "n1", "n2", "n3", "n4")
	h := clustertest.New(t, 4, clustertest.Options{Configure: nodes.configure})
	leader := h.WaitLeader()
	ctx := ctxT(t, 30*time.Second)
	lc := h.Node(leader)
	initMembers(t, ctx, h, nodes)

	// A presignature sealed under version 1 before the rotation.
	addPresig(t, ctx, lc, nodes[h.Nodes[leader].ID].kr, "p-old")

	// A follower leaves the member table and raft, another goes down (a
	// leader removing itself could keep the rest without a leader while it
	// runs, which is not what this test is about).
	var followers, current []int
	for i := range h.Nodes {
		if i != leader {
			followers = append(followers, i)
		}
	}
	removed, down := followers[0], followers[1]
	removedID := h.Nodes[removed].ID
	for i := range h.Nodes {
		if i != removed {
			current = append(current, i)
		}
	}
	if err := lc.RemoveMember(ctx, removedID); err != nil {
		t.Fatal(err)
	}
	h.Stop(removed)
	h.Stop(down)

	rot, err := h.Node(followers[2]).RotateKeyring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var currentIDs []string
	for _, i := range current {
		currentIDs = append(currentIDs, h.Nodes[i].ID)
	}
	if rot.Version != 2 || !slices.Equal(rot.Members, currentIDs) {
		t.Fatalf("rotation %+v, want version 2 to %v", rot, currentIDs)
	}
	h.Restart(down)
	leader = h.WaitLeader(current...)
	lc = h.Node(leader)
	for _, id := range currentIDs {
		k := nodes[id]
		h.Eventually(10*time.Second, id+" holds and sealed version 2", func() bool {
			return k.kr.Version() == 2 && slices.Contains(k.savedVersions(), 2)
		})
	}
	if nodes[removedID].kr.Holds(2) {
		t.Fatal("the removed member holds version 2")
	}
	h.Eventually(10*time.Second, "every member reported version 2", func() bool {
		st := lc.KeyringState()
		return slices.Equal(st.Reached(), currentIDs) && len(st.Pending) == 0
	})

	// A new presignature is sealed under version 2, by any member.
	other := h.Node(h.Index(currentIDs[0]))
	addPresig(t, ctx, other, nodes[currentIDs[0]].kr, "p-new")
	if v := presigVersion(t, other, "p-new"); v != 2 {
		t.Fatalf("new presignature sealed under version %d, want 2", v)
	}

	// The background pass moves the old one; a second pass finds nothing.
	if n := lc.StaleSealed(); n != 1 {
		t.Fatalf("%d stale sealed parts before the pass, want 1", n)
	}
	res, err := lc.ResealBatch(ctx, func(id string) string { return "apiuser/" + id }, 10)
	if err != nil || res.Moved != 1 || res.Left != 0 {
		t.Fatalf("reseal = %+v, %v; want 1 moved, 0 left", res, err)
	}
	if res, err := lc.ResealBatch(ctx, nil, 10); err != nil || res.Moved != 0 || res.Left != 0 {
		t.Fatalf("second reseal = %+v, %v", res, err)
	}
	h.WaitApplied(lc.AppliedIndex())
	for _, id := range currentIDs {
		c := h.Node(h.Index(id))
		if v := presigVersion(t, c, "p-old"); v != 2 {
			t.Fatalf("%s: old presignature under version %d after the pass, want 2", id, v)
		}
		info, _ := c.Presignature("k1", "p-old")
		rid := cluster.PresignatureRecordID("k1", info.Origin, info.OriginSeq, "p-old")
		if pt, err := nodes[id].kr.Decrypt(rid, info.Sealed); err != nil || string(pt) != "share p-old" {
			t.Fatalf("%s: resealed presignature opens to %q, %v", id, pt, err)
		}
	}

	// The raft log holds the rotation with one copy per current member,
	// none for the removed member, and none of them opens with its identity.
	rotated := rotationEntries(t, h.Nodes[leader].Storage)
	if len(rotated) != 1 {
		t.Fatalf("%d rotation entries in the log, want 1", len(rotated))
	}
	for _, w := range rotated[0].GetCopies() {
		if w.GetMemberId() == removedID {
			t.Fatal("the log holds a copy for the removed member")
		}
		bind := []byte(lc.ClusterID() + "\x00" + w.GetMemberId())
		if _, err := keyring.UnwrapVersion(nodes[removedID].identity, 2, rotated[0].GetCheck(), bind, w.GetWrapped()); err == nil {
			t.Fatalf("the removed member opens %s's copy", w.GetMemberId())
		}
	}

	// A replayed rotation is stale.
	_, err = lc.Propose(ctx, &protocol.ClusterCommand{Body: &protocol.ClusterCommand_KeyringRotated{KeyringRotated: rotated[0]}})
	if !errors.Is(err, cluster.ErrKeyring) {
		t.Fatalf("replayed rotation: %v, want ErrKeyring", err)
	}
}

// TestRotateKeyringSaveFails: a member whose keyring fails to seal after
// it took a version in does not report the version adopted (the FSM
// would drop its copy, and a restart would lose the version for good);
// its save is tried again, and only once it succeeded is the adoption
// recorded. The save fails twice: once when the version is taken in,
// once on the retry its nudge brings, so the timer's retry is what seals.
func TestRotateKeyringSaveFails(t *testing.T) {
	nodes := newKeyNodes(t, "n1", "n2", "n3")
	h := clustertest.New(t, 3, clustertest.Options{Configure: nodes.configure})
	leader := h.WaitLeader()
	ctx := ctxT(t, 30*time.Second)
	lc := h.Node(leader)
	initMembers(t, ctx, h, nodes)
	flaky := h.Nodes[h.Follower(leader)].ID
	k := nodes[flaky]
	k.mu.Lock()
	k.failures = 2
	k.mu.Unlock()

	if _, err := lc.RotateKeyring(ctx); err != nil {
		t.Fatal(err)
	}
	h.Eventually(10*time.Second, flaky+" reports version 2 once it sealed it", func() bool {
		adopted := lc.KeyringState().Adopted[flaky] >= 2
		if adopted && !slices.Contains(k.savedVersions(), 2) {
			t.Fatalf("%s reported version 2 adopted, but its sealed keyring lacks it", flaky)
		}
		if !adopted {
			h.Clock.Advance(time.Second)
		}
		return adopted
	})
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.failures != 0 {
		t.Fatalf("%d saves left to fail: the test did not exercise the retry", k.failures)
	}
}

// TestRotateKeyringUnknownLocalVersion: a node whose keyring holds a
// version the cluster never rotated in refuses to rotate, saying so,
// instead of proposing past it (which would skip versions).
func TestRotateKeyringUnknownLocalVersion(t *testing.T) {
	nodes := newKeyNodes(t, "n1")
	h := clustertest.New(t, 1, clustertest.Options{Configure: nodes.configure})
	c := h.Node(h.WaitLeader())
	ctx := ctxT(t, 30*time.Second)
	initMembers(t, ctx, h, nodes)
	stray := keyring.NewVersionKey(3)
	defer stray.Destroy()
	if err := nodes["n1"].kr.Add(stray); err != nil {
		t.Fatal(err)
	}
	_, err := c.RotateKeyring(ctx)
	if !errors.Is(err, cluster.ErrKeyring) || !strings.Contains(err.Error(), "holds version 3, which the cluster (at version 1) never rotated in") {
		t.Fatalf("rotation with a stray local version: %v", err)
	}
	if v := c.KeyringState().Version; v != 1 {
		t.Fatalf("the cluster is at version %d, want 1", v)
	}
}

// TestResealSkipsUnopenable: a presignature the node cannot open (sealed
// under another cluster's keyring) comes first in the order, yet the
// batches go on past it, one at a time, until the others have moved; the
// failure is logged once, not once per batch.
func TestResealSkipsUnopenable(t *testing.T) {
	nodes := newKeyNodes(t, "n1")
	logs := cluster.NewLogWriter(t)
	h := clustertest.New(t, 1, clustertest.Options{Configure: func(cfg *cluster.Config) {
		nodes.configure(cfg)
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}})
	c := h.Node(h.WaitLeader())
	ctx := ctxT(t, 30*time.Second)
	initMembers(t, ctx, h, nodes)
	foreign, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	addPresig(t, ctx, c, foreign, "p-a")
	addPresig(t, ctx, c, nodes["n1"].kr, "p-b")
	addPresig(t, ctx, c, nodes["n1"].kr, "p-c")
	if _, err := c.RotateKeyring(ctx); err != nil {
		t.Fatal(err)
	}
	h.Eventually(10*time.Second, "n1 reported version 2", func() bool { return len(c.KeyringState().Reached()) == 1 })
	moved := 0
	for range 4 {
		res, err := c.ResealBatch(ctx, nil, 1)
		if err != nil {
			t.Fatal(err)
		}
		moved += res.Moved
	}
	if moved != 2 || presigVersion(t, c, "p-b") != 2 || presigVersion(t, c, "p-c") != 2 {
		t.Fatalf("%d moved in 4 batches of one, want p-b and p-c", moved)
	}
	if n := logs.Count(`msg="record not resealed"`); n != 1 {
		t.Fatalf("the unopenable record was logged %d times, want once", n)
	}
}

// initMembers records every harness node in the member table with its
// identity key.
func initMembers(t *testing.T, ctx context.Context, h *clustertest.Harness, nodes keyNodes) {
	t.Helper()
	member := func(i int, token string) cluster.Member {
		n := h.Nodes[i]
		return cluster.Member{ID: n.ID, Address: n.Addr, IdentityKey: nodes[n.ID].identity.Public().(ed25519.PublicKey),
			Enclave: enclave.Identity{Kind: enclave.KindSim, Measurement: []byte("m1")}, JoinedWith: token}
	}
	c := h.Node(0)
	policy := enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindSim, Measurement: []byte("m1"), AllowDebug: true}}}
	if _, err := c.Propose(ctx, cluster.InitCommand("c-test", policy, member(0, ""))); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(h.Nodes); i++ {
		token := "t" + h.Nodes[i].ID
		hash := sha256.Sum256([]byte(token))
		if _, err := c.Propose(ctx, cluster.JoinTokenIssuedCommand(token, hash[:], h.Clock.Now().Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Propose(ctx, cluster.MemberAddedCommand(member(i, token))); err != nil {
			t.Fatal(err)
		}
	}
}

func addPresig(t *testing.T, ctx context.Context, c *cluster.Cluster, kr *keyring.Keyring, id string) {
	t.Helper()
	err := c.AddPresignatures(ctx, "k1", "", func(seq uint64) ([]cluster.SealedPresignature, error) {
		ct, err := kr.Encrypt(cluster.PresignatureRecordID("k1", c.NodeID(), seq, id), []byte("share "+id))
		return []cluster.SealedPresignature{{ID: id, OriginSeq: seq, Sealed: ct}}, err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func presigVersion(t *testing.T, c *cluster.Cluster, id string) uint32 {
	t.Helper()
	info, ok := c.Presignature("k1", id)
	if !ok {
		t.Fatalf("%s: no presignature %s", c.NodeID(), id)
	}
	v, err := keyring.CiphertextVersion(info.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// rotationEntries returns the KeyringRotated commands in a node's log.
func rotationEntries(t *testing.T, st *cluster.Storage) []*protocol.ClusterKeyringRotated {
	t.Helper()
	lo, _ := st.Logs.FirstIndex()
	hi, _ := st.Logs.LastIndex()
	var out []*protocol.ClusterKeyringRotated
	for i := lo; i <= hi; i++ {
		var l raft.Log
		if err := st.Logs.GetLog(i, &l); err != nil || l.Type != raft.LogCommand {
			continue
		}
		if cmd, err := cluster.DecodeCommand(l.Data); err == nil && cmd.GetKeyringRotated() != nil {
			out = append(out, cmd.GetKeyringRotated())
		}
	}
	return out
}
