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
// fresh key's pool on node c, taking for a fresh request that c owns.
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
		s, err := cluster.NewPresignStore(cluster.PresignStoreConfig{
			Cluster: c, Cipher: kr, KeyID: fmt.Sprintf("key-%d", i), RequestID: req,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
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
	stores := make([]*cluster.PresignStore, len(h.Nodes))
	for i := range h.Nodes {
		req := "req-" + h.Nodes[i].ID
		if err := h.Node(i).Claim(ctx, req, "u1"); err != nil {
			t.Fatal(err)
		}
		s, err := cluster.NewPresignStore(cluster.PresignStoreConfig{Cluster: h.Node(i), Cipher: kr, KeyID: "k1", RequestID: req})
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
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
	if err := pool.Put(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Take(ctx, p.ID()); !errors.Is(err, cluster.ErrNoRequest) {
		t.Fatalf("take without a request: got %v, want ErrNoRequest", err)
	}
	// A store for a request this node does not own cannot take.
	other, _ := cluster.NewPresignStore(cluster.PresignStoreConfig{Cluster: c, Cipher: kr, KeyID: "k1", RequestID: "not-mine"})
	if _, err := other.Take(ctx, p.ID()); !errors.Is(err, cluster.ErrUnknownRequest) {
		t.Fatalf("take for an unclaimed request: got %v, want ErrUnknownRequest", err)
	}
	// A keyring that did not seal it cannot open it, and says so without
	// leaking anything; the presignature stays taken.
	if err := c.Claim(ctx, "r1", "u1"); err != nil {
		t.Fatal(err)
	}
	wrong, _ := cluster.NewPresignStore(cluster.PresignStoreConfig{Cluster: c, Cipher: newKeyring(t), KeyID: "k1", RequestID: "r1"})
	if _, err := wrong.Take(ctx, p.ID()); err == nil {
		t.Fatal("a foreign keyring opened the presignature")
	}
	right, _ := cluster.NewPresignStore(cluster.PresignStoreConfig{Cluster: c, Cipher: kr, KeyID: "k1", RequestID: "r1"})
	if _, err := right.Take(ctx, p.ID()); !errors.Is(err, mpc.ErrPresignatureUsed) {
		t.Fatalf("take after a failed open: got %v, want ErrPresignatureUsed", err)
	}
	// A released request's presignatures burn: Put and Take both refuse.
	q := presigntest.Presignatures(t, 1)[0]
	if err := pool.Put(ctx, q); err != nil {
		t.Fatal(err)
	}
	if _, err := right.Take(ctx, q.ID()); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx, c.NodeID()); err != nil {
		t.Fatal(err)
	}
	if err := pool.Put(ctx, q); !errors.Is(err, mpc.ErrPresignatureUsed) || !errors.Is(err, cluster.ErrPresignatureBurned) {
		t.Fatalf("put of a burned presignature: got %v", err)
	}
}
