package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
)

// A single voter, as issue 5 runs it, on the in-memory transport. A real
// node sets DataDir and BindAddr instead of Storage and Transport.
func Example() {
	cfg := cluster.DefaultConfig()
	cfg.NodeID = "n1"
	cfg.Bootstrap = true
	cfg.Transport = cluster.NewInmemNetwork().NewTransport("n1", "n1")
	cfg.Storage = cluster.NewInmemStorage()
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 40*time.Millisecond
	cfg.OwnerTimeout = time.Second
	c, err := cluster.New(cfg)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.WaitLeader(ctx); err != nil {
		panic(err)
	}

	// The PresignPool adds sealed presignatures; a Poller claims a request;
	// its Session reserves a presignature, signs, and completes.
	// (cluster.PresignStore seals real presignatures; see its Add.)
	_ = c.AddPresignatures(ctx, "key-1", "", func(seq uint64) ([]cluster.SealedPresignature, error) {
		return []cluster.SealedPresignature{{ID: "p1", OriginSeq: seq, Sealed: []byte("ciphertext")}}, nil
	})
	_ = c.Claim(ctx, "req-1", "user-1")
	ref, _ := c.ReserveNext(ctx, "req-1", "key-1")
	owner, _ := c.Owner("req-1")
	fmt.Println("owner:", owner, "reserved:", ref.ID, "pool depth:", c.PoolDepth("key-1"))
	_ = c.Complete(ctx, "req-1", cluster.OutcomeSigned, "")

	r, _ := c.Request("req-1")
	fmt.Println("request:", r.Status, r.Outcome)
	err = c.Claim(ctx, "req-1", "user-1")
	fmt.Println(errors.Is(err, cluster.ErrCompleted))
	// Output:
	// owner: n1 reserved: p1 pool depth: 0
	// request: completed signed
	// true
}
