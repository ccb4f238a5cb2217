package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/bench/check"
	"github.com/coterie-mpc/coterie/node"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/client"
	"github.com/coterie-mpc/coterie/workspace/store"
)

// testCluster is a workspace and three `coterie node run` processes on
// loopback, for the failover tests.
type testCluster struct {
	t     testing.TB
	bin   string
	dir   string
	ws    *proc
	admin *client.Admin
	nodes []*clusterNode
	user  string
	ids   []string // every request submitted
	net   *testNet // nil: every process on loopback
}

type clusterNode struct {
	id   string
	conf string
	cfg  node.Config
	proc *proc
	ac   *node.AdminClient
	runs int
	cut  bool // partitioned from its peers: its view is stale
	// netns is the network namespace the node runs in, when it runs
	// without a network of its own (TestEnclosedNode).
	netns string
}

// newTestCluster starts the workspace, with cosigners cloud co-signers
// (1: 2-of-2, 2: 3-of-3), and three nodes: n1 bootstraps, n2 and n3 join
// with join tokens minted on n1.
func newTestCluster(t testing.TB, cosigners int) *testCluster {
	return newTestClusterOn(t, cosigners, 3, nil)
}

// newTestClusterOf is newTestCluster with nodes nodes.
func newTestClusterOf(t testing.TB, cosigners, nodes int) *testCluster {
	return newTestClusterOn(t, cosigners, nodes, nil)
}

// newTestClusterOn is newTestClusterOf with the nodes in net's namespaces
// and the workspace on its service bridge, or on loopback when net is nil.
func newTestClusterOn(t testing.TB, cosigners, nodes int, net *testNet) *testCluster {
	c := &testCluster{t: t, bin: buildBinary(t), dir: t.TempDir(), net: net}
	wsAddr := loopbackAddr(t)
	if net != nil {
		wsAddr = net.serviceAddr()
	}
	c.ws, c.admin = startWorkspaceAt(t, c.bin, c.dir, cosigners, wsAddr)
	for i := 1; i <= nodes; i++ {
		raftAddr, adminAddr := loopbackAddr(t), loopbackAddr(t)
		if net != nil {
			raftAddr, adminAddr = net.raftAddr(i-1), net.adminAddr(i-1)
		}
		c.addNode(nodeNet{bind: raftAddr, admin: adminAddr})
	}
	c.waitMembers(nodes)
	return c
}

// nodeNet is where a test node listens and how it reaches the network.
type nodeNet struct {
	bind, advertise, admin string
	egress                 string // network.egress_proxy
	parent                 string // storage.parent, with raft.nonvoter
	storeDir               string // the parent's store directory, which gets the join token
	netns                  string // the namespace the node runs in, if any
}

// addNode writes the next node's config, with net, and starts it. The
// first node bootstraps; the others join with a token minted on it.
func (c *testCluster) addNode(net nodeNet) *clusterNode {
	i := len(c.nodes) + 1
	n := &clusterNode{id: fmt.Sprintf("n%d", i), conf: filepath.Join(c.dir, fmt.Sprintf("n%d.yaml", i)), netns: net.netns}
	join := ""
	if i > 1 {
		tok := c.cli(0, "node", "cluster", "join-token", "--config", c.nodes[0].conf)
		tokPath, writeTo := filepath.Join(c.dir, n.id+".token"), ""
		if net.storeDir != "" {
			// As for an enclave: the token waits beside the parent's copies,
			// and the node restores it into its data directory.
			tokPath, writeTo = filepath.Join(c.dir, n.id, "join-token"), filepath.Join(net.storeDir, "join-token")
		}
		if writeTo == "" {
			writeTo = tokPath
		}
		if err := os.MkdirAll(filepath.Dir(writeTo), 0o700); err != nil {
			c.t.Fatal(err)
		}
		if err := os.WriteFile(writeTo, []byte(tok), 0o600); err != nil {
			c.t.Fatal(err)
		}
		join = "  join_token_file: " + tokPath + "\n"
	}
	conf := fmt.Sprintf(`node_id: %s
data_dir: %s
enclave:
  sim_platform_key: platform.key
raft:
  bind: %q
  advertise: %q
  bootstrap: %t
  nonvoter: %t
cluster:
  location: onprem:dc%d
%sadmin:
  listen: %q
network:
  egress_proxy: %q
storage:
  parent: %q
presign:
  target_depth: 2
  max_depth: 3
owner_timeout: 1s
shutdown_grace: 10s
log:
  level: info
`, n.id, n.id, net.bind, net.advertise, i == 1, net.parent != "", i, join, net.admin, net.egress, net.parent)
	if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
		c.t.Fatal(err)
	}
	cfg, err := node.LoadConfig(n.conf)
	if err != nil {
		c.t.Fatal(err)
	}
	n.cfg = cfg
	c.nodes = append(c.nodes, n)
	c.run(i - 1)
	return n
}

// run starts node i's process and waits until it serves.
func (c *testCluster) run(i int) {
	n := c.nodes[i]
	n.runs++
	bin, args := c.bin, []string{"node", "run", "--config", n.conf}
	if c.net != nil {
		bin, args = c.net.exec(i, bin, args...)
	}
	if n.netns != "" {
		bin, args = "ip", append([]string{"netns", "exec", n.netns, bin}, args...)
	}
	n.proc = startProc(c.t, bin, c.dir, fmt.Sprintf("%s-run%d", n.id, n.runs), args...)
	waitFor(c.t, 90*time.Second, n.id+" to serve", func() bool {
		if n.ac == nil {
			ac, err := node.NewAdminClient(n.cfg)
			if err != nil {
				return false
			}
			n.ac = ac
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return n.ac.Healthy(ctx)
	}, n.proc)
}

// cli runs a coterie command and returns its standard output.
func (c *testCluster) cli(i int, args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("coterie %s: %v\n%s\n%s log:\n%s", strings.Join(args, " "), err, stderr.String(), c.nodes[i].id, c.nodes[i].proc.tail())
	}
	return string(out)
}

// waitMembers waits until a serving node sees want voters.
func (c *testCluster) waitMembers(want int) {
	waitFor(c.t, 60*time.Second, fmt.Sprintf("%d voters", want), func() bool {
		n := c.serving()
		if n == nil {
			return false
		}
		v, err := n.ac.Members(c.ctx())
		if err != nil {
			return false
		}
		voters := 0
		for _, m := range v.Members {
			if m.Role == "voter" || m.Role == "leader" {
				voters++
			}
		}
		return voters == want
	}, c.procs()...)
}

func (c *testCluster) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	c.t.Cleanup(cancel)
	return ctx
}

func (c *testCluster) procs() []*proc {
	out := []*proc{c.ws}
	for _, n := range c.nodes {
		if n.proc != nil {
			out = append(out, n.proc)
		}
	}
	return out
}

// serving returns a node whose process runs, that is not cut off and that
// serves, or nil.
func (c *testCluster) serving() *clusterNode {
	for _, n := range c.nodes {
		if n.ac != nil && !n.cut && n.alive() && n.ac.Healthy(c.ctx()) {
			return n
		}
	}
	return nil
}

func (n *clusterNode) alive() bool {
	select {
	case <-n.proc.done:
		return false
	default:
		return true
	}
}

// pair pairs a signer-and-approver through node i.
func (c *testCluster) pair(i int) {
	created, err := c.admin.CreateUser(c.ctx(), &protocol.WsCreateUserRequest{Name: "cluster", Role: protocol.WsRole_WS_ROLE_BOTH})
	if err != nil {
		c.t.Fatal(err)
	}
	c.user = created.GetUser().GetId()
	cmd := exec.Command(c.bin, "node", "pair", "--config", c.nodes[i].conf, "--token-file", "-")
	cmd.Stdin = strings.NewReader(created.GetPairingToken())
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("node pair: %v\n%s", err, out)
	}
	// Every node serves the user (pairing records it through raft).
	waitFor(c.t, 30*time.Second, "every node to serve the user", func() bool {
		for _, n := range c.nodes {
			users, err := n.ac.Users(c.ctx())
			if err != nil || len(users) != 1 {
				return false
			}
		}
		return true
	}, c.procs()...)
}

// submit submits n transactions and returns their ids.
func (c *testCluster) submit(n int, note string) []string {
	var ids []string
	for i := range n {
		amount := fmt.Sprintf("%d", i+1)
		r, err := c.admin.SubmitTransaction(c.ctx(), &protocol.WsSubmitTransactionRequest{UserId: c.user, Transaction: &protocol.WsTransaction{
			Asset: "ETH", Amount: amount, Note: note, Source: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
			Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "0xc1"}, Amount: amount}},
		}})
		if err != nil {
			c.t.Fatal(err)
		}
		ids = append(ids, r.GetId())
	}
	c.ids = append(c.ids, ids...)
	return ids
}

// states returns the workspace's requests by id.
func (c *testCluster) states() map[string]*protocol.WsRequest {
	resp, err := c.admin.ListRequests(c.ctx(), &protocol.WsListRequestsRequest{UserId: c.user})
	if err != nil {
		c.t.Fatal(err)
	}
	m := map[string]*protocol.WsRequest{}
	for _, r := range resp.GetRequests() {
		m[r.GetId()] = r
	}
	return m
}

func (c *testCluster) waitDone(ids []string, d time.Duration) {
	waitFor(c.t, d, fmt.Sprintf("%d requests to finish", len(ids)), func() bool {
		st := c.states()
		for _, id := range ids {
			if !store.Terminal(st[id].GetState()) {
				return false
			}
		}
		return true
	}, c.procs()...)
}

// ownerOf waits up to d until one of the candidates owns an unfinished
// request of ids, and returns it with the requests it owns; nil when none
// did in time (they finished them all first, say).
func (c *testCluster) ownerOf(candidates []*clusterNode, ids []string, d time.Duration) (*clusterNode, []string) {
	var who *clusterNode
	var owned []string
	poll(d, func() bool {
		for _, n := range candidates {
			st, err := n.ac.Status(c.ctx())
			if err != nil {
				continue
			}
			for _, id := range st.Owned {
				if slices.Contains(ids, id) {
					owned = append(owned, id)
				}
			}
			if len(owned) > 0 {
				who = n
				return true
			}
		}
		return false
	})
	return who, owned
}

// mustOwnerOf is ownerOf that, while no candidate owns any, submits
// another batch of as many requests, up to four times (claims spread by a
// hash of the request id, so a few requests may all go to other nodes),
// and fails the test if none ever does. It returns ids with the requests
// it added.
func (c *testCluster) mustOwnerOf(candidates []*clusterNode, ids []string) (*clusterNode, []string, []string) {
	ids = slices.Clone(ids)
	batch := len(ids)
	for range 4 {
		if n, owned := c.ownerOf(candidates, ids, 30*time.Second); n != nil {
			return n, owned, ids
		}
		ids = append(ids, c.submit(batch, "another batch")...)
	}
	if n, owned := c.ownerOf(candidates, ids, 30*time.Second); n != nil {
		return n, owned, ids
	}
	for _, p := range c.procs() {
		c.t.Logf("%s log:\n%s", p.name, p.tail())
	}
	c.t.Fatalf("none of %d nodes owned any of %v", len(candidates), ids)
	return nil, nil, nil
}

func (c *testCluster) leader() (*clusterNode, []*clusterNode) {
	var lead *clusterNode
	var followers []*clusterNode
	waitFor(c.t, 30*time.Second, "a leader", func() bool {
		lead, followers = nil, nil
		for _, n := range c.nodes {
			if !n.alive() || n.cut {
				continue
			}
			st, err := n.ac.Status(c.ctx())
			if err != nil {
				return false
			}
			if st.Raft.State == "Leader" {
				lead = n
			} else {
				followers = append(followers, n)
			}
		}
		return lead != nil
	}, c.procs()...)
	return lead, followers
}

// resumed waits until every request of owned is claimed again by another
// node than lost, and returns how long after since each was: the failover
// time, timed by the claiming node's clock. A request lost completed in
// the moment before it was lost (a stopped or killed node completes
// nothing after) needs no failover and is left out.
func (c *testCluster) resumed(lost *clusterNode, owned []string, since time.Time) []time.Duration {
	var out []time.Duration
	waitFor(c.t, 2*time.Minute, "the lost node's requests to resume elsewhere", func() bool {
		out = out[:0]
		n := c.serving()
		if n == nil {
			return false
		}
		for _, id := range owned {
			r, err := n.ac.Request(c.ctx(), id)
			switch {
			case err != nil:
				return false
			case r.LastOwner == lost.id && r.Status == "completed":
				continue // it finished the request before it was lost
			case r.LastOwner == lost.id || r.ClaimedAt == nil:
				return false
			}
			out = append(out, r.ClaimedAt.Sub(since))
		}
		return true
	}, c.procs()...)
	return out
}

// checkInvariants checks the end state: every request signed (I3), every
// signature verified, one signature per digest and each presignature used
// once in the workspace's ledger and in the cluster's records (I1, I2).
func (c *testCluster) checkInvariants() {
	t := c.t
	st := c.states()
	used := map[string]string{}
	for _, id := range c.ids {
		r := st[id]
		if r.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED {
			t.Errorf("%s: %v (%s)", id, r.GetState(), r.GetReason())
		}
		if len(r.GetSignatures()) != 1 {
			t.Errorf("%s: %d signatures for one digest", id, len(r.GetSignatures()))
		}
		for _, sig := range r.GetSignatures() {
			if other, dup := used[sig.GetPresignId()]; dup {
				t.Errorf("presignature %s signed both %s and %s", sig.GetPresignId(), other, id)
			}
			used[sig.GetPresignId()] = id
		}
	}
	v, err := c.admin.Verify(c.ctx(), &protocol.WsVerifyRequest{})
	if err != nil || len(v.GetProblems()) != 0 || v.GetSignaturesChecked() != uint64(len(c.ids)) {
		t.Errorf("workspace verify: %v %v", v, err)
	}
	// The cluster's own records: each request completed once, signed,
	// with presignatures no other request reserved.
	n := c.serving()
	if n == nil {
		t.Fatal("no node serves")
	}
	// A Session proposes Complete after the workspace has marked the
	// request signed, so the records may trail the workspace a moment;
	// whatever is still missing after that is reported below, request by
	// request.
	poll(time.Minute, func() bool {
		for _, id := range c.ids {
			if r, err := n.ac.Request(c.ctx(), id); err != nil || r.Status != "completed" {
				return false
			}
		}
		return true
	})
	reserved := map[string]string{}
	for _, id := range c.ids {
		r, err := n.ac.Request(c.ctx(), id)
		if err != nil && !errors.Is(err, node.ErrNoRequest) {
			t.Fatal(err)
		}
		if r.Status != "completed" || r.Outcome != "signed" {
			t.Errorf("FSM: %s is %s/%s (%s)", id, r.Status, r.Outcome, r.Reason)
		}
		for _, ref := range r.Reserved {
			if other, dup := reserved[ref]; dup {
				t.Errorf("FSM: presignature %s reserved by both %s and %s", ref, other, id)
			}
			reserved[ref] = id
		}
	}
	// I6: every signature used a presignature that a commit reserved for
	// its request. The FSM keeps the request a spent presignature was
	// reserved for, whether the attempt completed (used) or was released
	// (burned), so one replica's listing covers every attempt of every
	// node.
	fsm, err := check.FromNode(c.ctx(), n.ac)
	if err != nil {
		t.Fatal(err)
	}
	spentFor := map[string]check.NodePresignature{}
	for _, p := range fsm.Presignatures {
		spentFor[p.ID] = p
	}
	for _, id := range c.ids {
		for _, sig := range st[id].GetSignatures() {
			p, ok := spentFor[sig.GetPresignId()]
			if !ok || p.RequestID != id || (p.Status != "used" && p.Status != "burned") {
				t.Errorf("I6: %s signed with presignature %s, which %s's FSM does not record as spent for it (%+v, listed: %v)", id, sig.GetPresignId(), n.id, p, ok)
			}
		}
	}
}

// TestClusterFailover runs three real nodes under load and kills a
// follower that owns requests (kill -9), then the leader, then stops a
// node past the owner timeout (SIGSTOP) and lets it go on (SIGCONT). After
// each, the requests the lost node owned resume on the others; at the end
// every request is signed once, every signature verifies, and no
// presignature was used twice. It logs the failover times (kill to claimed
// elsewhere).
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	c := newTestCluster(t, 1)
	c.pair(1) // through a node that did not bootstrap

	// A join token works once: another node cannot use a spent one.
	dir := filepath.Join(c.dir, "n9")
	conf := filepath.Join(c.dir, "n9.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("node_id: n9\ndata_dir: %s\nenclave:\n  sim_platform_key: platform.key\nraft:\n  bind: %q\n  bootstrap: false\nadmin:\n  listen: %q\n",
		dir, loopbackAddr(t), loopbackAddr(t))), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(c.bin, "node", "join", "--config", conf, "--token-file", filepath.Join(c.dir, "n2.token")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "used by another node") {
		t.Fatalf("a spent join token: %v\n%s", err, out)
	}

	// A follower that owns requests dies.
	ids := c.submit(8, "follower dies")
	_, followers := c.leader()
	victim, owned, ids := c.mustOwnerOf(followers, ids)
	killed := time.Now()
	victim.proc.kill()
	t.Logf("killed follower %s owning %v; resumed elsewhere after %v", victim.id, owned, c.resumed(victim, owned, killed))
	c.waitDone(ids, 3*time.Minute)
	c.run(slices.Index(c.nodes, victim))
	c.waitMembers(3)

	// The leader dies, owning requests if it gets any before it would
	// finish them: the others elect, and sign on either way.
	ids = c.submit(9, "leader dies")
	lead, _ := c.leader()
	_, owned = c.ownerOf([]*clusterNode{lead}, ids, 30*time.Second)
	killed = time.Now()
	lead.proc.kill()
	t.Logf("killed leader %s owning %v; resumed elsewhere after %v", lead.id, owned, c.resumed(lead, owned, killed))
	c.waitDone(ids, 3*time.Minute)
	c.run(slices.Index(c.nodes, lead))
	c.waitMembers(3)

	// A node stops past the owner timeout and goes on: its requests are
	// released to the others, and it finishes none it no longer owns.
	ids = c.submit(6, "node stops")
	stopped, owned, ids := c.mustOwnerOf(c.nodes, ids)
	paused := time.Now()
	_ = stopped.proc.cmd.Process.Signal(syscall.SIGSTOP)
	t.Logf("stopped %s owning %v; resumed elsewhere after %v", stopped.id, owned, c.resumed(stopped, owned, paused))
	_ = stopped.proc.cmd.Process.Signal(syscall.SIGCONT)
	c.waitDone(ids, 3*time.Minute)
	waitFor(t, time.Minute, stopped.id+" to serve again", func() bool { return stopped.ac.Healthy(c.ctx()) }, stopped.proc)

	c.checkInvariants()
}

// TestClusterRestarts restarts three real nodes one at a time under load
// (SIGTERM: each drains, handing leadership over and finishing or handing
// back its requests, then starts again) and then the whole cluster at
// once. No request fails, every one is signed once with its own
// presignature, and the cluster signs again after the full restart.
func TestClusterRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	c := newTestCluster(t, 1)
	c.pair(0)

	ids := c.submit(9, "rolling restart")
	for i, n := range c.nodes {
		n.proc.stop()
		t.Logf("restarting %s", n.id)
		c.run(i)
		c.waitMembers(3)
	}
	c.waitDone(ids, 3*time.Minute)

	for _, n := range c.nodes {
		n.proc.stop()
	}
	for i := range c.nodes {
		n := c.nodes[i]
		n.proc = startProc(t, c.bin, c.dir, fmt.Sprintf("%s-full%d", n.id, n.runs), "node", "run", "--config", n.conf)
	}
	for i := range c.nodes {
		n := c.nodes[i]
		waitFor(t, 90*time.Second, n.id+" to serve after the full restart", func() bool { return n.ac.Healthy(c.ctx()) }, c.procs()...)
	}
	c.waitDone(c.submit(3, "after the full restart"), 3*time.Minute)
	c.checkInvariants()
}

// TestClusterFailover3of3 kills a follower that owns requests in a 3-of-3
// setup (two cloud co-signers): its requests finish on the others, each
// signed once with its own presignature.
func TestClusterFailover3of3(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	c := newTestCluster(t, 2)
	c.pair(2)
	ids := c.submit(4, "3-of-3 follower dies")
	_, followers := c.leader()
	victim, owned, ids := c.mustOwnerOf(followers, ids)
	killed := time.Now()
	victim.proc.kill()
	t.Logf("killed follower %s owning %v; resumed elsewhere after %v", victim.id, owned, c.resumed(victim, owned, killed))
	c.waitDone(ids, 4*time.Minute)
	c.checkInvariants()
}
