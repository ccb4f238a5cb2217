package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/node"
)

// TestEnclosedNode: a node with no network and no lasting disk of its own,
// as inside a Nitro enclave, serves in a cluster through `coterie bridge`.
// It runs in a network namespace without a single usable interface
// (loopback stays down), so any connection it made by itself would fail.
// It listens on unix sockets, as an enclave node listens on vsock: the
// bridge forwards a loopback TCP port to its raft socket, and the commands
// reach its admin socket. It dials its peers and the workspace through the
// bridge's CONNECT proxy, which allows exactly those, and keeps its sealed
// files in the bridge's store, where it also finds its join token. It joins as a non-voter, pairs an API user
// with the workspace, and signs the requests it owns; when its bridge is
// killed, the others finish its requests; once a new bridge runs, the node
// is killed and its whole data directory deleted, as an enclave's memory
// is lost: it restarts from the parent's copies as the same member,
// catches up from the leader, and signs again.
func TestEnclosedNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a workspace, three nodes and a bridge")
	}
	if os.Geteuid() != 0 {
		t.Skip("the enclosed node runs in a network namespace of its own, which needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("the enclosed node's network namespace needs the ip command (iproute2)")
	}
	c := &testCluster{t: t, bin: buildBinary(t), dir: t.TempDir()}
	wsAddr := loopbackAddr(t)
	c.ws, c.admin = startWorkspaceAt(t, c.bin, c.dir, 1, wsAddr)
	n1 := c.addNode(nodeNet{bind: loopbackAddr(t), admin: loopbackAddr(t)})
	c.waitMembers(1)

	ns := fmt.Sprintf("coterie-%d-enclosed", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del: %v\n%s", err, out)
		}
	})
	sock := func(name string) string { return "unix:" + filepath.Join(c.dir, name+".sock") }
	raftPort, n3Raft := loopbackAddr(t), loopbackAddr(t)
	storeDir := filepath.Join(c.dir, "n2-parent")
	bridges := 0
	startBridge := func() *proc {
		bridges++
		p := startProc(t, c.bin, c.dir, fmt.Sprintf("bridge-%d", bridges), "bridge",
			"--forward", raftPort+"="+sock("n2-raft"),
			"--store", sock("n2-store"), "--store-dir", storeDir,
			"--proxy", sock("n2-egress"), "--allow", n1.cfg.Raft.Bind, "--allow", n3Raft, "--allow", wsAddr)
		waitFor(t, 10*time.Second, "the bridge", func() bool {
			b, _ := os.ReadFile(p.log)
			return strings.Contains(string(b), "egress proxy")
		}, p)
		return p
	}
	bridge := startBridge()
	n2 := c.addNode(nodeNet{bind: sock("n2-raft"), advertise: raftPort, admin: sock("n2-admin"), egress: sock("n2-egress"),
		parent: sock("n2-store"), storeDir: storeDir, netns: ns})
	c.addNode(nodeNet{bind: n3Raft, admin: loopbackAddr(t)})
	c.waitMembers(2)
	// waitNonvoter waits until n1 lists n2 as a non-voter, and returns n2's
	// identity key.
	waitNonvoter := func() string {
		var key string
		waitFor(t, 60*time.Second, "n2 to serve as a non-voter", func() bool {
			m, err := n1.ac.Members(c.ctx())
			if err != nil {
				return false
			}
			for _, v := range m.Members {
				if v.ID == "n2" {
					key = v.IdentityKey
					return v.Role == node.RoleNonvoter
				}
			}
			return false
		}, c.procs()...)
		return key
	}
	identity := waitNonvoter()

	// Pairing through n2 takes it to the workspace through the proxy.
	c.pair(1)
	enclosed := []*clusterNode{n2}
	_, owned, ids := c.mustOwnerOf(enclosed, c.submit(4, "enclosed"))
	t.Logf("n2 owns %v", owned)
	c.waitDone(ids, 120*time.Second)

	// Without its bridge n2 reaches nothing: the others finish what it
	// owned.
	_, owned, ids = c.mustOwnerOf(enclosed, c.submit(4, "bridge killed"))
	bridge.kill()
	t.Logf("bridge killed while n2 owned %v", owned)
	c.waitDone(ids, 120*time.Second)

	// A new bridge; n2 killed (its sockets left behind) and its data
	// directory gone.
	startBridge()
	n2.proc.kill()
	if err := os.RemoveAll(n2.cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(storeDir, node.AdminTokenFile)); !os.IsNotExist(err) {
		t.Fatalf("the parent keeps n2's admin token (%v), with which it could change what the cluster trusts", err)
	}
	n2.ac = nil // its admin token is new: it never leaves the node
	c.run(1)
	if again := waitNonvoter(); again != identity {
		t.Fatalf("n2 came back with identity %s, not %s", again, identity)
	}
	if b, _ := os.ReadFile(n2.proc.log); !strings.Contains(string(b), "data directory restored from its storage") {
		t.Fatalf("n2 did not restore its data directory from the parent:\n%s", n2.proc.tail())
	}
	_, owned, ids = c.mustOwnerOf(enclosed, c.submit(4, "restarted"))
	t.Logf("restarted n2 owns %v", owned)
	c.waitDone(ids, 120*time.Second)
	c.checkInvariants()
	for i := 1; i <= bridges; i++ {
		b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("bridge-%d.log", i)))
		if strings.Contains(string(b), "not allowed") {
			t.Errorf("the enclosed node dialled a destination the bridge does not allow:\n%s", b)
		}
	}
}
