package cluster

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/protocol"
)

// These tests speak the TLS transport's wire directly, as a rogue or a
// misbehaving member would.

// staticMembers is a fixed member table: identity key to member id.
type staticMembers map[string]string

func (m staticMembers) Member(pub ed25519.PublicKey) (string, bool) {
	id, ok := m[string(pub)]
	return id, ok
}

// mutableMembers is a member table a test can change while nodes run.
type mutableMembers struct {
	mu sync.Mutex
	m  map[string]string
}

func (m *mutableMembers) Member(pub ed25519.PublicKey) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.m[string(pub)]
	return id, ok
}

func (m *mutableMembers) remove(pub ed25519.PublicKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, string(pub))
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// loopback returns a loopback address with a port that was free a moment
// ago.
func loopback(t *testing.T) string {
	t.Helper()
	return loopbacks(t, 1)[0]
}

// loopbacks returns n distinct such addresses: each port is held until all
// are taken, since the kernel may hand out a port just closed again.
func loopbacks(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// testLog sends Warn and above to t.Log until the test ends.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(newLogWriter(t), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// logWriter sends what it is given to t.Log until the test ends, and keeps
// it for tests that look for a message.
type logWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
	kept strings.Builder
}

func newLogWriter(t *testing.T) *logWriter {
	w := &logWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return w
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kept.Write(p)
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

// has reports whether anything logged so far contains s.
func (w *logWriter) has(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Contains(w.kept.String(), s)
}

// wireNode is one TLS node of a test cluster.
type wireNode struct {
	id   string
	key  ed25519.PrivateKey
	addr string
	c    *Cluster
}

// startWire starts n bootstrapped voters on the TLS transport, all sharing
// the member table that members makes for them; edit adjusts each config.
// It does not wait for a leader; see leaderOf.
func startWire(t *testing.T, n int, members func([]*wireNode) PeerAuthorizer, edit func(*Config)) []*wireNode {
	t.Helper()
	var nodes []*wireNode
	for i, addr := range loopbacks(t, n) {
		nodes = append(nodes, &wireNode{id: fmt.Sprintf("n%d", i+1), key: newKey(t), addr: addr})
	}
	auth := members(nodes)
	for _, nd := range nodes {
		cfg := DefaultConfig()
		cfg.NodeID, cfg.BindAddr, cfg.Storage = nd.id, nd.addr, NewInmemStorage()
		cfg.Identity, cfg.Members = nd.key, auth
		cfg.Logger = testLog(t)
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 150*time.Millisecond, 150*time.Millisecond, 100*time.Millisecond
		cfg.TransportTimeout = time.Second
		cfg.Bootstrap = true
		for _, p := range nodes {
			if p != nd {
				cfg.Peers = append(cfg.Peers, Peer{ID: p.id, Address: p.addr})
			}
		}
		if edit != nil {
			edit(&cfg)
		}
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		nd.c = c
	}
	return nodes
}

// tableOf lists the nodes' keys, plus extra members.
func tableOf(nodes []*wireNode, extra map[string]ed25519.PrivateKey) staticMembers {
	m := staticMembers{}
	for _, nd := range nodes {
		m[string(pubOf(nd.key))] = nd.id
	}
	for id, k := range extra {
		m[string(pubOf(k))] = id
	}
	return m
}

func leaderOf(t *testing.T, nodes []*wireNode) (leader *wireNode, followers []*wireNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id, err := nodes[0].c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range nodes {
		if nd.id == id {
			leader = nd
		} else {
			followers = append(followers, nd)
		}
	}
	return leader, followers
}

// openStream dials a stream of kind as the holder of key, accepting any
// server.
func openStream(t *testing.T, addr string, key ed25519.PrivateKey, kind byte) (*tls.Conn, error) {
	t.Helper()
	cert, err := newCertificate(key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return dialStream(ctx, tcpNetwork{}, addr, clientTLS(cert, func(ed25519.PublicKey) error { return nil }), kind, 5*time.Second)
}

// forwardFrame encodes a forwarded command as a frame body.
func forwardFrame(t *testing.T, cmd *protocol.ClusterCommand) []byte {
	t.Helper()
	data, err := EncodeCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(&protocol.ClusterForwardRequest{Body: &protocol.ClusterForwardRequest_Command{Command: data}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func stamped(cmd *protocol.ClusterCommand, node string) *protocol.ClusterCommand {
	stamp(cmd, node, time.Now())
	return cmd
}

// fakeJoin records what the join stream handed it.
type fakeJoin struct {
	mu    sync.Mutex
	peers []ed25519.PublicKey
	reqs  [][]byte
}

func (f *fakeJoin) ServeJoin(_ context.Context, peer ed25519.PublicKey, req []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers = append(f.peers, peer)
	f.reqs = append(f.reqs, req)
	return append([]byte("welcome:"), req...), nil
}

// A well-formed key that is not in the member table gets no raft or
// forwarding stream, in any way it asks, and so cannot propose anything;
// it reaches only the JoinServer.
func TestTLSRogueRefusedBeforeAnyFrame(t *testing.T) {
	join := &fakeJoin{}
	nodes := startWire(t, 3, func(n []*wireNode) PeerAuthorizer { return tableOf(n, nil) }, func(c *Config) { c.Join = join })
	leader, _ := leaderOf(t, nodes)
	rogue := newKey(t)

	// The polite rogue sends the kind byte only: the refusal comes before
	// any frame could have been read.
	for _, kind := range []byte{streamRaft, streamForward} {
		if _, err := openStream(t, leader.addr, rogue, kind); !errors.Is(err, ErrForbidden) {
			t.Fatalf("%s stream from an unlisted key: got %v, want ErrForbidden", streamName(kind), err)
		}
	}

	// The eager rogue sends its frames with the kind byte: they are never
	// read, and the stream ends after the refusal.
	cert, _ := newCertificate(rogue)
	for _, kind := range []byte{streamRaft, streamForward} {
		conn, err := tls.Dial("tcp", leader.addr, clientTLS(cert, func(ed25519.PublicKey) error { return nil }))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.WriteByte(kind)
		_ = writeFrame(&buf, forwardFrame(t, stamped(ClaimCommand("rogue-r", "u1"), leader.id)))
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(buf.Bytes()); err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(conn)
		if len(got) > 1 || (len(got) == 1 && got[0] != ackForbidden) {
			t.Fatalf("%s stream from an unlisted key answered %q", streamName(kind), got)
		}
		conn.Close()
	}

	// A rogue node with a full transport that trusts the cluster.
	rcfg := DefaultConfig()
	rcfg.NodeID, rcfg.BindAddr, rcfg.Identity = "rogue", loopback(t), rogue
	rcfg.Members = tableOf(nodes, map[string]ed25519.PrivateKey{"rogue": rogue})
	rcfg.Logger = testLog(t)
	rt, err := newTLSTransport(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	data, _ := EncodeCommand(stamped(ClaimCommand("rogue-r", "u1"), "rogue"))
	if _, err := rt.Forward(ctx, raft.ServerAddress(leader.addr), &protocol.ClusterForwardRequest{Body: &protocol.ClusterForwardRequest_Command{Command: data}}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("rogue forward: got %v, want ErrForbidden", err)
	}
	if _, err := (*muxStream)(rt).Dial(raft.ServerAddress(leader.addr), time.Second); !errors.Is(err, ErrForbidden) {
		t.Fatalf("rogue raft dial: got %v, want ErrForbidden", err)
	}
	var vote raft.RequestVoteResponse
	if err := rt.RequestVote(raft.ServerID(leader.id), raft.ServerAddress(leader.addr), &raft.RequestVoteRequest{
		RPCHeader: raft.RPCHeader{ID: []byte("rogue"), Addr: []byte(rcfg.BindAddr)}, Term: 1 << 40,
	}, &vote); err == nil {
		t.Fatal("rogue vote request went through")
	}

	// Nothing the rogue sent reached the log, and its huge term did not
	// disturb the leader.
	if err := leader.c.Barrier(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, ok := leader.c.FSM().Request("rogue-r"); ok {
		t.Fatal("the rogue's claim committed")
	}
	if term := leader.c.Status().Term; term >= 1<<40 {
		t.Fatalf("leader took the rogue's term %d", term)
	}

	// Its join stream reaches the JoinServer, with its key.
	pin := IdentityPin(pubOf(leader.key))
	ans, err := DialJoin(ctx, nil, leader.addr, rogue, pin, []byte("hello"), 1<<10)
	if err != nil || string(ans) != "welcome:hello" {
		t.Fatalf("join from an unlisted key: %q, %v", ans, err)
	}
	join.mu.Lock()
	defer join.mu.Unlock()
	if len(join.peers) != 1 || !join.peers[0].Equal(pubOf(rogue)) || string(join.reqs[0]) != "hello" {
		t.Fatalf("JoinServer saw peers %x, requests %q", join.peers, join.reqs)
	}
}

// A member may forward only commands in its own name, on either
// transport; a request from no authenticated peer runs nothing.
func TestForwardInAnotherNodesName(t *testing.T) {
	check := func(t *testing.T, leaderID string, leader *Cluster, from Transport, fromID, otherID string, leaderAddr raft.ServerAddress) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		send := func(cmd *protocol.ClusterCommand) error {
			data, err := EncodeCommand(cmd)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := from.Forward(ctx, leaderAddr, &protocol.ClusterForwardRequest{Body: &protocol.ClusterForwardRequest_Command{Command: data}})
			if err != nil {
				t.Fatalf("forward: %v", err)
			}
			return codeError(resp.GetCode(), resp.GetMessage())
		}
		err := send(stamped(ClaimCommand("r-impostor", "u1"), otherID))
		if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), otherID) {
			t.Fatalf("claim in %s's name sent by %s: got %v, want ErrForbidden", otherID, fromID, err)
		}
		if err := send(stamped(ReleaseCommand(otherID, ""), leaderID)); !errors.Is(err, ErrForbidden) {
			t.Fatalf("release stamped with the leader's id sent by %s: got %v, want ErrForbidden", fromID, err)
		}
		if err := send(stamped(ClaimCommand("r-own", "u1"), fromID)); err != nil {
			t.Fatalf("claim in its own name: %v", err)
		}
		if owner, _ := leader.Owner("r-own"); owner != fromID {
			t.Fatalf("owner %q, want %q", owner, fromID)
		}
		if _, ok := leader.FSM().Request("r-impostor"); ok {
			t.Fatal("the impostor's claim committed")
		}
		// Neither a command nor a membership change runs without a peer.
		for _, req := range []*protocol.ClusterForwardRequest{
			{Body: &protocol.ClusterForwardRequest_AddVoter{AddVoter: &protocol.ClusterAddVoter{Id: "n9", Address: "x:1"}}},
			{Body: &protocol.ClusterForwardRequest_RemoveServer{RemoveServer: &protocol.ClusterRemoveServer{Id: fromID}}},
		} {
			resp := leader.handle(ctx, "", req)
			if err := codeError(resp.GetCode(), resp.GetMessage()); !errors.Is(err, ErrForbidden) || resp.GetIndex() != 0 {
				t.Fatalf("unauthenticated %T: got %v", req.GetBody(), err)
			}
		}
	}

	t.Run("tls", func(t *testing.T) {
		nodes := startWire(t, 3, func(n []*wireNode) PeerAuthorizer { return tableOf(n, nil) }, nil)
		leader, f := leaderOf(t, nodes)
		check(t, leader.id, leader.c, f[0].c.trans, f[0].id, f[1].id, raft.ServerAddress(leader.addr))
	})
	t.Run("inmem", func(t *testing.T) {
		network := NewInmemNetwork()
		ids := []string{"n1", "n2", "n3"}
		var cs []*Cluster
		for _, id := range ids {
			cfg := DefaultConfig()
			cfg.NodeID, cfg.Storage, cfg.Transport = id, NewInmemStorage(), network.NewTransport(id, "inmem-"+id)
			cfg.Logger = testLog(t)
			cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 100*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
			cfg.Bootstrap = true
			for _, p := range ids {
				if p != id {
					cfg.Peers = append(cfg.Peers, Peer{ID: p, Address: "inmem-" + p})
				}
			}
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			cs = append(cs, c)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		leaderID, err := cs[0].WaitLeader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var leader *Cluster
		var f []*Cluster
		for _, c := range cs {
			if c.NodeID() == leaderID {
				leader = c
			} else {
				f = append(f, c)
			}
		}
		check(t, leaderID, leader, f[0].trans, f[0].NodeID(), f[1].NodeID(), raft.ServerAddress("inmem-"+leaderID))
	})
}

// readFrame refuses a claimed length over its bound before allocating,
// and allocates a long frame only as its bytes arrive.
func TestReadFrameBoundedAllocation(t *testing.T) {
	const max = 4 << 20
	allocated := func(claim uint32, body int) (uint64, error) {
		var in bytes.Buffer
		in.Write([]byte{byte(claim >> 24), byte(claim >> 16), byte(claim >> 8), byte(claim)})
		in.Write(make([]byte, body))
		r := nopDeadline{&in}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := readFrame(r, max, time.Second)
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc, err
	}
	n, err := allocated(1<<31, 0)
	if !errors.Is(err, ErrTooLarge) || n > 64<<10 {
		t.Fatalf("claim of 2 GiB: %v after allocating %d bytes", err, n)
	}
	n, err = allocated(max, 100)
	if !errors.Is(err, io.ErrUnexpectedEOF) || n > 1<<20 {
		t.Fatalf("claim of 4 MiB with 100 bytes sent: %v after allocating %d bytes", err, n)
	}
	if n, err := allocated(max, max); err != nil || n > 3*max {
		t.Fatalf("full 4 MiB frame: %v after allocating %d bytes", err, n)
	}
}

type nopDeadline struct{ io.Reader }

func (nopDeadline) SetReadDeadline(time.Time) error { return nil }

// Over the network, a member's frame that claims 2 GiB ends its stream at
// once, and the node keeps serving.
func TestTLSHugeFrameClosesStream(t *testing.T) {
	nodes := startWire(t, 1, func(n []*wireNode) PeerAuthorizer { return tableOf(n, nil) }, nil)
	n1 := nodes[0]
	conn, err := openStream(t, n1.addr, n1.key, streamForward)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte{0x80, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(conn); len(b) != 0 || isTimeout(err) {
		t.Fatalf("after a 2 GiB claim: read %q, %v; want the stream closed", b, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n1.c.Claim(ctx, "r1", "u1"); err != nil {
		t.Fatal(err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// eventually waits for cond, which an event elsewhere makes true.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(5 * time.Millisecond)
	}
}

// A member holds at most MaxConnsPerPeer streams, and keys that are not
// members at most MaxJoinConns together; a freed place can be used again.
func TestTLSConnectionBounds(t *testing.T) {
	member := newKey(t)
	nodes := startWire(t, 1,
		func(n []*wireNode) PeerAuthorizer { return tableOf(n, map[string]ed25519.PrivateKey{"n2": member}) },
		func(c *Config) {
			c.MaxConnsPerPeer, c.MaxJoinConns, c.Join = 8, 1, &fakeJoin{}
			c.TransportTimeout = 10 * time.Second // held join streams stay open
		})
	addr := nodes[0].addr
	var held []*tls.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i, kind := range []byte{streamForward, streamForward, streamRaft, streamJoin, streamForward, streamForward, streamForward, streamForward} {
		c, err := openStream(t, addr, member, kind)
		if err != nil {
			t.Fatalf("stream %d (%s) of 8: %v", i+1, streamName(kind), err)
		}
		held = append(held, c)
	}
	for _, kind := range []byte{streamForward, streamRaft, streamJoin} {
		if _, err := openStream(t, addr, member, kind); !errors.Is(err, errBusy) {
			t.Fatalf("9th stream (%s): got %v, want errBusy", streamName(kind), err)
		}
	}
	// Another member's streams are counted apart.
	if c, err := openStream(t, addr, nodes[0].key, streamForward); err != nil {
		t.Fatalf("another key's stream: %v", err)
	} else {
		c.Close()
	}
	// A closed stream frees its place once the server sees it end.
	held[0].Close()
	held = held[1:]
	eventually(t, "a freed place", func() bool {
		c, err := openStream(t, addr, member, streamForward)
		if err == nil {
			held = append(held, c)
		}
		return err == nil
	})

	// Join streams of keys that are not members share MaxJoinConns; the
	// member's join stream above does not count against it.
	j, err := openStream(t, addr, newKey(t), streamJoin)
	if err != nil {
		t.Fatalf("first stranger's join: %v", err)
	}
	held = append(held, j)
	if _, err := openStream(t, addr, newKey(t), streamJoin); !errors.Is(err, errBusy) {
		t.Fatalf("second stranger's join: got %v, want errBusy", err)
	}
}

// A member removed from the table gets nothing more through its open
// forwarding stream, and its raft stream is closed.
func TestTLSRemovedMemberLosesStreams(t *testing.T) {
	member := newKey(t)
	table := &mutableMembers{}
	nodes := startWire(t, 1, func(n []*wireNode) PeerAuthorizer {
		table.m = tableOf(n, map[string]ed25519.PrivateKey{"n2": member})
		return table
	}, nil)
	leaderOf(t, nodes)
	addr := nodes[0].addr
	fwd, err := openStream(t, addr, member, streamForward)
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	rs, err := openStream(t, addr, member, streamRaft)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	ask := func(node string) (*protocol.ClusterForwardResponse, error) {
		_ = fwd.SetDeadline(time.Now().Add(5 * time.Second))
		if err := writeFrame(fwd, forwardFrame(t, stamped(ClaimCommand("r-"+node, "u1"), node))); err != nil {
			return nil, err
		}
		b, err := readFrame(fwd, 1<<20, time.Second)
		if err != nil {
			return nil, err
		}
		resp := &protocol.ClusterForwardResponse{}
		return resp, proto.Unmarshal(b, resp)
	}
	if resp, err := ask("n2"); err != nil || resp.GetIndex() == 0 {
		t.Fatalf("member's forward: %v, %v", resp, err)
	}
	table.remove(pubOf(member))
	resp, err := ask("n2")
	if err != nil {
		t.Fatal(err)
	}
	if err := codeError(resp.GetCode(), resp.GetMessage()); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "no longer a member") || resp.GetIndex() != 0 {
		t.Fatalf("removed member's forward: index %d, %v", resp.GetIndex(), err)
	}
	if _, err := ask("n2"); err == nil {
		t.Fatal("forward stream still open after the refusal")
	}
	_ = rs.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := rs.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("raft stream of a removed member: %v, want it closed", err)
	}
}

// A dialer accepts a server only when its key is a member's, and the
// member raft has at that address.
func TestTLSDialerChecksServer(t *testing.T) {
	k2, k3, stranger := newKey(t), newKey(t), newKey(t)
	addr2 := loopback(t)
	nodes := startWire(t, 1,
		func(n []*wireNode) PeerAuthorizer {
			return tableOf(n, map[string]ed25519.PrivateKey{"n2": k2, "n3": k3})
		},
		func(c *Config) { c.Peers = []Peer{{ID: "n2", Address: addr2}} })
	// Two voters, one up: no leader, which this test does not need.
	n1 := nodes[0].c.trans.(*tlsTransport)

	serve := func(id, addr string, key ed25519.PrivateKey) {
		cfg := DefaultConfig()
		cfg.NodeID, cfg.BindAddr, cfg.Identity = id, addr, key
		cfg.Members = tableOf(nodes, map[string]ed25519.PrivateKey{id: key})
		cfg.Logger = testLog(t)
		tr, err := newTLSTransport(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tr.Close() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// n3, a member, answers at the address raft has for n2.
	serve("n3", addr2, k3)
	if _, _, err := n1.dial(ctx, raft.ServerAddress(addr2), streamForward, time.Second); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), `raft has "n2"`) {
		t.Fatalf("member n3 at n2's address: got %v, want ErrForbidden", err)
	}
	// A key that is no member, at an address raft does not know.
	other := loopback(t)
	serve("x", other, stranger)
	if _, _, err := n1.dial(ctx, raft.ServerAddress(other), streamForward, time.Second); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "not a member") {
		t.Fatalf("stranger's server: got %v, want ErrForbidden", err)
	}
}

// The listener speaks TLS 1.3 only.
func TestTLSRefusesOlderVersions(t *testing.T) {
	nodes := startWire(t, 1, func(n []*wireNode) PeerAuthorizer { return tableOf(n, nil) }, nil)
	cert, _ := newCertificate(nodes[0].key)
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12} {
		conf := &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, MinVersion: v, MaxVersion: v}
		conn, err := tls.Dial("tcp", nodes[0].addr, conf)
		if err == nil {
			conn.Close()
			t.Fatalf("TLS version %#x accepted", v)
		}
	}
	// And a client without a certificate gets no stream.
	conn, err := tls.Dial("tcp", nodes[0].addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = conn.Write([]byte{streamJoin})
		if b, rerr := io.ReadAll(conn); len(b) != 0 || rerr == nil {
			t.Fatalf("client without a certificate: read %q, %v", b, rerr)
		}
		conn.Close()
	}
}

// A peer that connects and stays silent, before or after the handshake,
// is dropped after TransportTimeout; past MaxHandshakes, a new connection
// is dropped at once.
func TestTLSSilentPeersDropped(t *testing.T) {
	const timeout = 300 * time.Millisecond
	nodes := startWire(t, 1, func(n []*wireNode) PeerAuthorizer { return tableOf(n, nil) }, func(c *Config) {
		c.TransportTimeout = timeout
	})
	addr := nodes[0].addr
	closedWithin := func(conn net.Conn) time.Duration {
		start := time.Now()
		_ = conn.SetReadDeadline(start.Add(10 * time.Second))
		_, err := io.ReadAll(conn)
		if isTimeout(err) {
			t.Fatal("the node held a silent connection open")
		}
		return time.Since(start)
	}
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if d := closedWithin(raw); d < timeout/2 {
		t.Fatalf("silent TCP peer dropped after %v, before its deadline", d)
	}
	// Handshake done, no stream kind.
	cert, _ := newCertificate(newKey(t))
	conn, err := tls.Dial("tcp", addr, clientTLS(cert, func(ed25519.PublicKey) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closedWithin(conn)
}

func TestTLSHandshakeBound(t *testing.T) {
	nodes := startWire(t, 1, func(n []*wireNode) PeerAuthorizer { return tableOf(n, nil) }, func(c *Config) {
		c.TransportTimeout, c.MaxHandshakes = 10*time.Second, 1
	})
	silent, err := net.Dial("tcp", nodes[0].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// The silent connection holds the only handshake place from the moment
	// it is accepted; the next one is dropped at once.
	eventually(t, "a connection dropped at the handshake bound", func() bool {
		c, err := net.Dial("tcp", nodes[0].addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = c.Read(make([]byte, 1))
		return err != nil && !isTimeout(err)
	})
	// Once it goes, handshakes run again.
	silent.Close()
	eventually(t, "the handshake place freed", func() bool {
		_, err := openStream(t, nodes[0].addr, nodes[0].key, streamForward)
		return err == nil
	})
}

// A peer whose port refuses connections is gone; one that accepts them
// but never answers (a hung process) is not.
func TestTLSGoneOnlyWhenRefused(t *testing.T) {
	nodes := startWire(t, 3, func(n []*wireNode) PeerAuthorizer { return tableOf(n, nil) }, nil)
	leader, followers := leaderOf(t, nodes)
	lt, victim := leader.c.trans.(*tlsTransport), followers[0]
	addr := raft.ServerAddress(victim.addr)
	if lt.Gone(addr) {
		t.Fatal("a running follower is gone")
	}
	if err := victim.c.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the leader to see the stopped follower gone", func() bool { return lt.Gone(addr) })

	hung, err := net.Listen("tcp", victim.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	eventually(t, "a silent listener to stop counting as gone", func() bool { return !lt.Gone(addr) })
}

// A leader whose port refuses connections is replaced about
// HeartbeatTimeout after its last contact, by an early election; one that
// accepts connections and never answers is left to raft's own timer.
func TestGoneLeaderElectsEarly(t *testing.T) {
	const early = "electing early"
	for _, hung := range []bool{false, true} {
		t.Run(map[bool]string{false: "gone", true: "hung"}[hung], func(t *testing.T) {
			logs := map[string]*logWriter{}
			nodes := startWire(t, 3, func(n []*wireNode) PeerAuthorizer { return tableOf(n, nil) }, func(c *Config) {
				c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = time.Second, time.Second, 100*time.Millisecond
				logs[c.NodeID] = newLogWriter(t)
				c.Logger = slog.New(slog.NewTextHandler(logs[c.NodeID], &slog.HandlerOptions{Level: slog.LevelInfo}))
			})
			leader, followers := leaderOf(t, nodes)
			closed := time.Now()
			if err := leader.c.Close(); err != nil {
				t.Fatal(err)
			}
			if hung {
				ln, err := net.Listen("tcp", leader.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
			}
			eventually(t, "a new leader", func() bool {
				_, id := followers[0].c.raft.LeaderWithID()
				return id != "" && string(id) != leader.id
			})
			t.Logf("a new leader %v after the old one stopped", time.Since(closed))
			var woke bool
			for _, f := range followers {
				woke = woke || logs[f.id].has(early)
			}
			if woke == hung {
				t.Fatalf("leader %s: a follower elected early: %v", map[bool]string{false: "gone", true: "hung"}[hung], woke)
			}
		})
	}
}
