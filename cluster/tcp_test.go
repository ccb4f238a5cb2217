package cluster_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/cluster/clustertest"
)

// freeAddr returns a loopback address with a port that was free a moment
// ago, so a node can restart on the same address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func tcpConfig(t *testing.T, id, dir, addr string) cluster.Config {
	cfg := cluster.DefaultConfig()
	cfg.NodeID = id
	cfg.DataDir = dir
	cfg.BindAddr = addr
	cfg.Logger = clustertest.Logger(t, slog.LevelWarn)
	// Loopback: elections can be quicker than DESIGN's 500 ms.
	cfg.HeartbeatTimeout = 150 * time.Millisecond
	cfg.ElectionTimeout = 150 * time.Millisecond
	cfg.LeaderLeaseTimeout = 100 * time.Millisecond
	cfg.TransportTimeout = time.Second
	return cfg
}

func startTCP(t *testing.T, cfg cluster.Config) *cluster.Cluster {
	t.Helper()
	c, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTCPSingleVoterRestart runs one voter on the real TCP transport and
// bolt storage, snapshots, and restarts it from disk.
func TestTCPSingleVoterRestart(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	cfg := tcpConfig(t, "n1", dir, addr)
	cfg.Bootstrap = true
	c := startTCP(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := c.AddAPIUser(ctx, cluster.Record{ID: "u1", Public: []byte("alice"), Sealed: []byte("ct-u1")}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddPresignatures(ctx, "k1", "", sealed("p1", "p2", "p3")); err != nil {
		t.Fatal(err)
	}
	if err := c.Claim(ctx, "r1", "u1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Reserve(ctx, "r1", cluster.PresignatureRef{KeyID: "k1", ID: "p1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Snapshot(); err != nil {
		t.Fatal(err)
	}
	// Entries after the snapshot come back by replay.
	if err := c.Complete(ctx, "r1", cluster.OutcomeSigned, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.Claim(ctx, "r2", "u1"); err != nil {
		t.Fatal(err)
	}
	want, _ := c.FSM().EncodeState()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	cfg.Bootstrap = true // ignored: the node has state
	c2 := startTCP(t, cfg)
	if err := c2.FSM().WaitApplied(ctx, c.AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	got, _ := c2.FSM().EncodeState()
	if string(got) != string(want) {
		t.Fatal("state after restart differs")
	}
	// I1 across restarts.
	if err := c2.Reserve(ctx, "r2", cluster.PresignatureRef{KeyID: "k1", ID: "p1"}); !errors.Is(err, cluster.ErrPresignatureUsed) {
		t.Fatalf("reserve of a used presignature after restart: got %v", err)
	}
	if err := c2.Reserve(ctx, "r2", cluster.PresignatureRef{KeyID: "k1", ID: "p2"}); err != nil {
		t.Fatal(err)
	}
	if r, _ := c2.APIUser("u1"); string(r.Sealed) != "ct-u1" {
		t.Fatalf("api user after restart: %+v", r)
	}
}

// TestTCPForwarding runs three voters over TCP and proposes from followers,
// so forwarded proposals cross real sockets.
func TestTCPForwarding(t *testing.T) {
	ids := []string{"n1", "n2", "n3"}
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	var nodes []*cluster.Cluster
	for i, id := range ids {
		cfg := tcpConfig(t, id, t.TempDir(), addrs[i])
		cfg.Bootstrap = true
		for j := range ids {
			if j != i {
				cfg.Peers = append(cfg.Peers, cluster.Peer{ID: ids[j], Address: addrs[j]})
			}
		}
		c, err := cluster.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		nodes = append(nodes, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	leaderID, err := nodes[0].WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var followers []*cluster.Cluster
	for _, c := range nodes {
		if c.NodeID() != leaderID {
			followers = append(followers, c)
		}
	}
	if err := followers[0].AddPresignatures(ctx, "k1", "", sealed("p1")); err != nil {
		t.Fatalf("forwarded add: %v", err)
	}
	for i := range 20 {
		if err := followers[i%2].Claim(ctx, "r1", "u1"); err != nil && !errors.Is(err, cluster.ErrClaimed) {
			t.Fatalf("forwarded claim: %v", err)
		}
	}
	owner, _ := followers[0].Owner("r1")
	if owner != followers[0].NodeID() {
		t.Fatalf("owner %q, want the first claimant %q", owner, followers[0].NodeID())
	}
	if err := followers[1].Reserve(ctx, "r1", cluster.PresignatureRef{KeyID: "k1", ID: "p1"}); !errors.Is(err, cluster.ErrNotOwner) {
		t.Fatalf("reserve by a non-owner over TCP: got %v, want ErrNotOwner", err)
	}
	if err := followers[0].Reserve(ctx, "r1", cluster.PresignatureRef{KeyID: "k1", ID: "p1"}); err != nil {
		t.Fatal(err)
	}
	// A command over the size limit is refused before it is sent.
	big := func(seq uint64) ([]cluster.SealedPresignature, error) {
		return []cluster.SealedPresignature{{ID: "big", OriginSeq: seq, Sealed: make([]byte, 5<<20)}}, nil
	}
	if err := followers[1].AddPresignatures(ctx, "k1", "", big); !errors.Is(err, cluster.ErrTooLarge) {
		t.Fatalf("oversized command: got %v, want ErrTooLarge", err)
	}
}

// TestTCPRejectsGarbage sends junk to the shared port: the node drops the
// connection and keeps serving.
func TestTCPRejectsGarbage(t *testing.T) {
	addr := freeAddr(t)
	cfg := tcpConfig(t, "n1", t.TempDir(), addr)
	cfg.Bootstrap = true
	c := startTCP(t, cfg)
	for _, junk := range [][]byte{
		[]byte("GET / HTTP/1.0\r\n\r\n"),
		{'F', 0xff, 0xff, 0xff, 0xff},                   // forward frame claiming 4 GiB
		{'F', 0, 0, 0, 3, 0xff, 0xff, 0xff},             // forward frame that is not protobuf
		{'F', 0, 0, 0, 4, 0x0a, 0x02, 0x08, 0x01},       // a command that does not decode
		{'R', 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06}, // raft stream with junk
	} {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = conn.Write(junk)
		buf := make([]byte, 256)
		_, _ = conn.Read(buf)
		conn.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Claim(ctx, "r1", "u1"); err != nil {
		t.Fatalf("node stopped serving after garbage: %v", err)
	}
}
