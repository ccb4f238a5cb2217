package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/cluster/clustertest"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/protocol/mpc/presigntest"
)

func newKeyring(t *testing.T) *keyring.Keyring {
	kr, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// contractStores returns a newStore for presigntest.Run: each store is a
// fresh key's pool on node c, seen by a fresh request that c owns.
func contractStores(c *cluster.Cluster, kr cluster.Cipher) func(t *testing.T) mpc.PresignStore {
	var n atomic.Int64
	return func(t *testing.T) mpc.PresignStore {
		i := n.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req := fmt.Sprintf("req-%d", i)
		if err := c.Claim(ctx, req, "u1"); err != nil {
			t.Fatal(err)
		}
		s, err := cluster.NewPresignStore(cluster.PresignStoreConfig{Cluster: c, Cipher: kr, KeyID: fmt.Sprintf("key-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		return s.For(req)
	}
}

func TestPresignStoreContract(t *testing.T) {
	kr := newKeyring(t)
	t.Run("SingleVoter", func(t *testing.T) {
		h := clustertest.New(t, 1, clustertest.Options{})
		h.WaitLeader()
		presigntest.Run(t, contractStores(h.Node(0), kr))
	})
	t.Run("Follower", func(t *testing.T) {
		h := clustertest.New(t, 3, clustertest.Options{})
		leader := h.WaitLeader()
		presigntest.Run(t, contractStores(h.Node(h.Follower(leader)), kr))
	})
}

// TestPresignStoreRaceAcrossNodes: every node takes the same presignatures
// at once, each for its own request; exactly one Take per presignature
// wins, cluster-wide.
func TestPresignStoreRaceAcrossNodes(t *testing.T) {
	h := clustertest.New(t, 3, clustertest.Options{})
	h.WaitLeader()
	kr := newKeyring(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ps := presigntest.Presignatures(t, 4)
	stores := make([]mpc.PresignStore, len(h.Nodes))
	for i := range h.Nodes {
		req := "req-" + h.Nodes[i].ID
		if err := h.Node(i).Claim(ctx, req, "u1"); err != nil {
			t.Fatal(err)
		}
		s, err := cluster.NewPresignStore(cluster.PresignStoreConfig{Cluster: h.Node(i), Cipher: kr, KeyID: "k1"})
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s.For(req)
	}
	for _, p := range ps {
		if err := stores[0].Put(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	wins := make([]atomic.Int32, len(ps))
	var wg sync.WaitGroup
	for _, s := range stores {
		for j, p := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := s.Take(ctx, p.ID())
				switch {
				case err == nil:
					if got.ID() != p.ID() {
						t.Errorf("took %s, got %s", p.ID(), got.ID())
					}
					wins[j].Add(1)
				case !errors.Is(err, mpc.ErrPresignatureUsed):
					t.Errorf("losing take: %v", err)
				}
			}()
		}
	}
	wg.Wait()
	for j := range wins {
		if n := wins[j].Load(); n != 1 {
			t.Errorf("presignature %d taken %d times", j, n)
		}
	}
	// The raft log holds ciphertext only: no plaintext share in the state.
	state, err := h.Node(0).FSM().EncodeState()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		plain, _ := p.MarshalBinary()
		if containsBytes(state, plain[len(plain)-32:]) {
			t.Fatal("the FSM state holds presignature plaintext")
		}
	}
}

func containsBytes(haystack, needle []byte) bool {
	for i := 0; i+len(needle) <= len(haystack); i++ {
		if string(haystack[i:i+len(needle)]) == string(needle) {
			return true
		}
	}
	return false
}

func TestPresignStoreErrors(t *testing.T) {
	h := clustertest.New(t, 1, clustertest.Options{})
	h.WaitLeader()
	c := h.Node(0)
	kr := newKeyring(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := cluster.NewPresignStore(cluster.PresignStoreConfig{}); err == nil {
		t.Fatal("empty config accepted")
	}
	pool, err := cluster.NewPresignStore(cluster.PresignStoreConfig{Cluster: c, Cipher: kr, KeyID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	p := presigntest.Presignatures(t, 1)[0]
	if err := pool.Add(ctx, p, ""); err != nil {
		t.Fatal(err)
	}
	// A request this node does not own cannot take.
	if _, err := pool.For("not-mine").Take(ctx, p.ID()); !errors.Is(err, cluster.ErrUnknownRequest) {
		t.Fatalf("take for an unclaimed request: got %v, want ErrUnknownRequest", err)
	}
	// Nothing opens before its Reserve committed.
	ref := cluster.PresignatureRef{KeyID: "k1", ID: p.ID().String()}
	if _, err := pool.Open("r1", ref); !errors.Is(err, cluster.ErrNotReserved) {
		t.Fatalf("open of an available presignature: got %v, want ErrNotReserved", err)
	}
	// A keyring that did not seal it cannot open it, and says so without
	// leaking anything; the presignature stays taken.
	if err := c.Claim(ctx, "r1", "u1"); err != nil {
		t.Fatal(err)
	}
	wrong, _ := cluster.NewPresignStore(cluster.PresignStoreConfig{Cluster: c, Cipher: newKeyring(t), KeyID: "k1"})
	if _, err := wrong.For("r1").Take(ctx, p.ID()); err == nil {
		t.Fatal("a foreign keyring opened the presignature")
	}
	if _, err := pool.For("r1").Take(ctx, p.ID()); !errors.Is(err, mpc.ErrPresignatureUsed) {
		t.Fatalf("take after a failed open: got %v, want ErrPresignatureUsed", err)
	}
	if _, err := pool.Open("r2", ref); !errors.Is(err, cluster.ErrNotReserved) {
		t.Fatalf("open for another request: got %v, want ErrNotReserved", err)
	}
	// Adding and reserving in one commit needs the request's ownership,
	// and adds nothing without it.
	q := presigntest.Presignatures(t, 1)[0]
	if err := pool.Add(ctx, q, "not-mine"); !errors.Is(err, cluster.ErrUnknownRequest) {
		t.Fatalf("add reserving for an unclaimed request: got %v", err)
	}
	if d := c.PoolDepth("k1"); d != 0 {
		t.Fatalf("pool depth %d after a refused add, want 0", d)
	}
	if err := pool.Add(ctx, q, "r1"); err != nil {
		t.Fatal(err)
	}
	qref := cluster.PresignatureRef{KeyID: "k1", ID: q.ID().String()}
	if got, err := pool.Open("r1", qref); err != nil || got.ID() != q.ID() {
		t.Fatalf("open of a presignature added for r1: %v", err)
	}
	// A released request's presignatures burn: Put and Take both refuse.
	if err := c.Release(ctx, c.NodeID()); err != nil {
		t.Fatal(err)
	}
	if err := pool.For("r1").Put(ctx, q); !errors.Is(err, mpc.ErrPresignatureUsed) || !errors.Is(err, cluster.ErrPresignatureBurned) {
		t.Fatalf("put of a burned presignature: got %v", err)
	}
	if _, err := pool.Open("r1", qref); !errors.Is(err, cluster.ErrNotReserved) {
		t.Fatalf("open of a burned presignature: got %v, want ErrNotReserved", err)
	}
}

// TestPresignStoreBindsOrigin: a sealed share opens only as the
// presignature its one Add admitted. Re-proposing it under a fresh number
// (the only Add the high-water mark lets through) or as another node's
// leaves a presignature that does not decrypt, so replaying a spent share
// cannot bring it back.
func TestPresignStoreBindsOrigin(t *testing.T) {
	h := clustertest.New(t, 3, clustertest.Options{})
	leader := h.WaitLeader()
	kr := newKeyring(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n0, n1 := h.Node(leader), h.Node(h.Follower(leader))
	pool, _ := cluster.NewPresignStore(cluster.PresignStoreConfig{Cluster: n0, Cipher: kr, KeyID: "k1"})
	p := presigntest.Presignatures(t, 1)[0]
	if err := pool.Add(ctx, p, ""); err != nil {
		t.Fatal(err)
	}
	info, _ := n0.Presignature("k1", p.ID().String())
	if info.Origin != n0.NodeID() || info.OriginSeq != 1 || n0.HighWater("k1", n0.NodeID()) != 1 {
		t.Fatalf("added as %s#%d, high-water %d; want %s#1, 1", info.Origin, info.OriginSeq, n0.HighWater("k1", n0.NodeID()), n0.NodeID())
	}
	// Spend it.
	if err := n0.Claim(ctx, "r1", "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.ReserveNext(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if err := n0.Complete(ctx, "r1", cluster.OutcomeSigned, ""); err != nil {
		t.Fatal(err)
	}
	// Replay its ciphertext under a fresh id (so that no spent set can
	// recognise it), by the same node with a fresh number and by another
	// node: both are admitted as numbers, and neither opens.
	for i, c := range []*cluster.Cluster{n0, n1} {
		id := fmt.Sprintf("replayed-%d", i)
		err := c.AddPresignatures(ctx, "k1", "", func(seq uint64) ([]cluster.SealedPresignature, error) {
			return []cluster.SealedPresignature{{ID: id, OriginSeq: seq, Sealed: info.Sealed}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		req := "r-" + id
		if err := c.Claim(ctx, req, "u1"); err != nil {
			t.Fatal(err)
		}
		view, _ := cluster.NewPresignStore(cluster.PresignStoreConfig{Cluster: c, Cipher: kr, KeyID: "k1"})
		ref, err := view.ReserveNext(ctx, req)
		if err != nil || ref.ID != id {
			t.Fatalf("reserve: %v %v", ref, err)
		}
		if _, err := view.Open(req, ref); err == nil {
			t.Fatalf("a replayed share opened as %s", id)
		}
	}
}

// TestReserveNextNeverCollides: Sessions on every node reserve at once from
// one pool; the FSM hands each a distinct presignature, every Reserve
// commits or finds the pool empty, and none is refused for a collision.
func TestReserveNextNeverCollides(t *testing.T) {
	h := clustertest.New(t, 3, clustertest.Options{})
	h.WaitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const pool, perNode = 12, 5
	var ids []string
	for i := range pool {
		ids = append(ids, fmt.Sprintf("p%02d", i))
	}
	if err := h.Node(0).AddPresignatures(ctx, "k1", "", sealed(ids...)); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		got   = map[string]string{}
		empty int
		wg    sync.WaitGroup
	)
	for i := range h.Nodes {
		c := h.Node(i)
		for j := range perNode {
			req := fmt.Sprintf("r-%d-%d", i, j)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.Claim(ctx, req, "u1"); err != nil {
					t.Error(err)
					return
				}
				ref, err := c.ReserveNext(ctx, req, "k1")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, cluster.ErrPoolEmpty):
					empty++
				case err != nil:
					t.Errorf("%s: %v", req, err)
				case got[ref.ID] != "":
					t.Errorf("%s and %s both reserved %s", got[ref.ID], req, ref.ID)
				default:
					got[ref.ID] = req
				}
			}()
		}
	}
	wg.Wait()
	if len(got) != pool || empty != len(h.Nodes)*perNode-pool {
		t.Fatalf("%d reserved, %d found the pool empty; want %d and %d", len(got), empty, pool, len(h.Nodes)*perNode-pool)
	}
}
