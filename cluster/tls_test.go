package cluster_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
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

// members is a fixed member table, standing in for the FSM's.
type members map[string]string

func (m members) Member(pub ed25519.PublicKey) (string, bool) {
	id, ok := m[string(pub)]
	return id, ok
}

func identity(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func tlsConfig(t *testing.T, id, dir, addr string, key ed25519.PrivateKey, table members) cluster.Config {
	cfg := cluster.DefaultConfig()
	cfg.NodeID = id
	cfg.DataDir = dir
	cfg.BindAddr = addr
	cfg.Identity = key
	cfg.Members = table
	cfg.Logger = clustertest.Logger(t, slog.LevelWarn)
	// Loopback: elections can be quicker than DESIGN's 500 ms.
	cfg.HeartbeatTimeout = 150 * time.Millisecond
	cfg.ElectionTimeout = 150 * time.Millisecond
	cfg.LeaderLeaseTimeout = 100 * time.Millisecond
	cfg.TransportTimeout = time.Second
	return cfg
}

func startTLS(t *testing.T, cfg cluster.Config) *cluster.Cluster {
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

// TestTLSSingleVoterRestart runs one voter on the real TLS transport and
// bolt storage, snapshots, and restarts it from disk.
func TestTLSSingleVoterRestart(t *testing.T) {
	dir, addr, key := t.TempDir(), freeAddr(t), identity(t)
	cfg := tlsConfig(t, "n1", dir, addr, key, members{string(key.Public().(ed25519.PublicKey)): "n1"})
	cfg.Bootstrap = true
	c := startTLS(t, cfg)
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
	c2 := startTLS(t, cfg)
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

// TestTLSForwarding runs three voters over mutual TLS, authorised by a
// member table that holds their keys: they elect a leader, commit, and
// forward proposals from followers across real sockets.
func TestTLSForwarding(t *testing.T) {
	ids := []string{"n1", "n2", "n3"}
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	keys := []ed25519.PrivateKey{identity(t), identity(t), identity(t)}
	table := members{}
	for i, id := range ids {
		table[string(keys[i].Public().(ed25519.PublicKey))] = id
	}
	var nodes []*cluster.Cluster
	for i, id := range ids {
		cfg := tlsConfig(t, id, t.TempDir(), addrs[i], keys[i], table)
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

// TestTLSRejectsGarbage sends plaintext junk, including the streams the
// TCP transport used to serve, to the TLS port: the node drops the
// connection and keeps serving.
func TestTLSRejectsGarbage(t *testing.T) {
	addr, key := freeAddr(t), identity(t)
	cfg := tlsConfig(t, "n1", t.TempDir(), addr, key, members{string(key.Public().(ed25519.PublicKey)): "n1"})
	cfg.Bootstrap = true
	c := startTLS(t, cfg)
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

// joinServer answers joins from its script.
type joinServer struct {
	mu    sync.Mutex
	peers []ed25519.PublicKey
	err   error
}

func (j *joinServer) ServeJoin(_ context.Context, peer ed25519.PublicKey, req []byte) ([]byte, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.peers = append(j.peers, peer)
	if j.err != nil {
		return nil, j.err
	}
	return append([]byte("keyring for "), req...), nil
}

// TestDialJoin runs the joiner's side against a member: it accepts only the
// server whose key matches the token's pin, carries the JoinServer's answer
// or refusal, and is told when the member serves no joins.
func TestDialJoin(t *testing.T) {
	key, joiner := identity(t), identity(t)
	js := &joinServer{}
	start := func(join cluster.JoinServer) string {
		addr := freeAddr(t)
		cfg := tlsConfig(t, "n1", t.TempDir(), addr, key, members{string(key.Public().(ed25519.PublicKey)): "n1"})
		cfg.Bootstrap = true
		cfg.Join = join
		startTLS(t, cfg)
		return addr
	}
	addr := start(js)
	pin := cluster.IdentityPin(key.Public().(ed25519.PublicKey))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The wrong pin: refused in the handshake, before the request leaves.
	wrong := cluster.IdentityPin(joiner.Public().(ed25519.PublicKey))
	if _, err := cluster.DialJoin(ctx, nil, addr, joiner, wrong, []byte("j1"), 1<<10); !errors.Is(err, cluster.ErrForbidden) || !strings.Contains(err.Error(), "pin") {
		t.Fatalf("wrong pin: got %v, want ErrForbidden", err)
	}
	js.mu.Lock()
	if len(js.peers) != 0 {
		t.Fatalf("the request reached the JoinServer through a wrong pin")
	}
	js.mu.Unlock()

	ans, err := cluster.DialJoin(ctx, nil, addr, joiner, pin, []byte("j1"), 1<<10)
	if err != nil || string(ans) != "keyring for j1" {
		t.Fatalf("right pin: %q, %v", ans, err)
	}
	js.mu.Lock()
	if len(js.peers) != 1 || !js.peers[0].Equal(joiner.Public()) {
		t.Fatalf("JoinServer saw %x, want the joiner's key", js.peers)
	}
	js.err = errors.New("join token expired\x1b[2J")
	js.mu.Unlock()

	_, err = cluster.DialJoin(ctx, nil, addr, joiner, pin, []byte("j1"), 1<<10)
	if !errors.Is(err, cluster.ErrJoinRefused) || !strings.Contains(err.Error(), "join token expired?[2J") {
		t.Fatalf("refusal: got %v, want ErrJoinRefused with the member's text, control characters replaced", err)
	}
	if _, err := cluster.DialJoin(ctx, nil, addr, joiner, pin, make([]byte, 2<<10), 1<<10); !errors.Is(err, cluster.ErrTooLarge) {
		t.Fatalf("oversized request: got %v, want ErrTooLarge", err)
	}
	// A request over the member's bound (MaxCommandBytes) is refused from
	// its header: the member answers with the reason and closes, so the
	// joiner, still writing, may see the reset instead.
	if _, err := cluster.DialJoin(ctx, nil, addr, joiner, pin, make([]byte, 5<<20), 8<<20); err == nil {
		t.Fatal("request over the member's bound accepted")
	}
	js.mu.Lock()
	if len(js.peers) != 2 {
		t.Fatalf("JoinServer called %d times, want 2: the oversized request reached it", len(js.peers))
	}
	js.mu.Unlock()

	if _, err := cluster.DialJoin(ctx, nil, start(nil), joiner, pin, []byte("j1"), 1<<10); !errors.Is(err, cluster.ErrJoinRefused) || !strings.Contains(err.Error(), "serves no joins") {
		t.Fatalf("member without a JoinServer: got %v", err)
	}
}
