package actors

import (
	"context"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/cluster/clustertest"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/protocol/mpc"
)

// TestAcquireTakesWhatEntersThePool: a Session that finds the pool empty
// while every slow-path slot is busy takes the presignature that enters
// the pool meanwhile (a refill's) at once, without presigning itself.
func TestAcquireTakesWhatEntersThePool(t *testing.T) {
	h := clustertest.New(t, 1, clustertest.Options{})
	cl := h.Node(h.WaitLeader())
	kr, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	engine, err := mpc.New(mpc.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Cluster, cfg.Cipher, cfg.Engine = cl, kr, engine
	cfg.SlowPathWorkers = 1
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const key, request = "share/u", "r-1"
	if err := cl.Claim(ctx, request, "u"); err != nil {
		t.Fatal(err)
	}
	add := func(id string) {
		t.Helper()
		err := cl.AddPresignatures(ctx, key, "", func(seq uint64) ([]cluster.SealedPresignature, error) {
			return []cluster.SealedPresignature{{ID: id, OriginSeq: seq, Sealed: []byte{1}}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Every slow-path slot is busy.
	s.slow.slots <- struct{}{}

	pool, err := cluster.NewPresignStore(cluster.PresignStoreConfig{Cluster: cl, Cipher: kr, KeyID: key})
	if err != nil {
		t.Fatal(err)
	}
	u := &userState{User: User{ID: "u", ShareRecordID: key}, pool: pool}
	got := make(chan acquired, 1)
	go func() {
		got <- s.acquire(ctx, request, u, 3, func() { t.Error("presigned on the spot with every slot busy") })
	}()
	// Wait (bounded) until it waits for the pool to grow.
	for i := 0; ; i++ {
		s.slow.mu.Lock()
		_, waiting := s.slow.added[key]
		s.slow.mu.Unlock()
		if waiting {
			break
		}
		if i == 10000 {
			t.Fatal("acquire never waited for the pool")
		}
		time.Sleep(time.Millisecond)
	}
	add("refill")
	s.slow.poolGrew(key) // as forward does on EventPresignaturesAdded
	select {
	case a := <-got:
		if a.err != nil || a.empty || a.presigns != 0 || a.ref.ID != "refill" {
			t.Fatalf("acquire = %+v, want the refill's presignature", a)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting Session did not take the presignature that entered the pool")
	}
}
