package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// testNet is a private network for a real-process test, made of Linux
// network namespaces, so that the test can partition a node for real
// (loopback cannot be cut between processes).
//
// Each node runs in its own namespace with two links:
//   - eth0 to the cluster bridge: raft, forwarded proposals and joins. A
//     partition sets a node's eth0 down, which cuts it from every peer in
//     both directions (its route to the cluster subnet goes with the
//     link), the strongest partition for I6.
//   - eth1 to the service bridge: the workspace (which runs in the test's
//     own namespace, listening on the service bridge's address) and the
//     node's admin API, which the test and the coterie commands reach from
//     there. It stays up, so a cut node can still reach the workspace and
//     could sign there if it broke I6.
//
// The bridges live in the test's namespace without forwarding between
// them (a namespace routes nothing by default, and the nodes have no
// default route), so the service link is no back door between peers. The
// names carry the test process's pid, so that parallel test processes do
// not collide, and everything is removed by t.Cleanup, also on failure.
type testNet struct {
	t        *testing.T
	tag      string // the pid, in every name
	octet    int    // the subnets' third octet
	clusterB string // the cluster bridge
	serviceB string // the service bridge
	ns       []string
}

// The subnets: 10.201.X.0/24 for the cluster, 10.202.X.0/24 for the
// services, X from the pid. Only the service subnet has an address in the
// test's namespace (X.1); node i (0-based) is X.(i+2) on both.
const (
	netClusterPrefix = "10.201"
	netServicePrefix = "10.202"
)

// newTestNet makes n namespaces wired to the two bridges, or skips the
// test when the machine cannot: creating namespaces needs root and the ip
// command.
func newTestNet(t *testing.T, n int) *testNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the partition test puts each node in its own network namespace, which needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("the partition test needs the ip command (iproute2) for network namespaces")
	}
	pid := os.Getpid()
	tn := &testNet{t: t, tag: fmt.Sprint(pid), octet: pid % 250}
	tn.clusterB, tn.serviceB = "ctc"+tn.tag, "cts"+tn.tag
	if out, err := exec.Command("ip", "-4", "route", "show", netServicePrefix+fmt.Sprintf(".%d.0/24", tn.octet)).Output(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("subnet %s.%d.0/24 is in use here or unreadable (%v): %s", netServicePrefix, tn.octet, err, out)
	}
	tn.bridge(tn.clusterB, "")
	tn.bridge(tn.serviceB, fmt.Sprintf("%s.%d.1/24", netServicePrefix, tn.octet))
	for i := range n {
		ns := fmt.Sprintf("coterie-%s-n%d", tn.tag, i+1)
		tn.ip("netns", "add", ns)
		t.Cleanup(func() { tn.cleanup("netns", "del", ns) })
		tn.ns = append(tn.ns, ns)
		tn.ip("-n", ns, "link", "set", "lo", "up")
		for _, l := range []struct{ dev, host, bridge, prefix string }{
			{"eth0", fmt.Sprintf("ctc%sn%d", tn.tag, i+1), tn.clusterB, netClusterPrefix},
			{"eth1", fmt.Sprintf("cts%sn%d", tn.tag, i+1), tn.serviceB, netServicePrefix},
		} {
			// Deleting one end deletes the pair. The namespace would take
			// its end along, but only once the kernel frees it, which
			// sockets left behind can delay past the test.
			tn.ip("link", "add", l.host, "type", "veth", "peer", "name", l.dev, "netns", ns)
			t.Cleanup(func() { tn.cleanup("link", "del", l.host) })
			tn.ip("link", "set", l.host, "master", l.bridge, "up")
			tn.ip("-n", ns, "addr", "add", fmt.Sprintf("%s.%d.%d/24", l.prefix, tn.octet, i+2), "dev", l.dev)
			tn.ip("-n", ns, "link", "set", l.dev, "up")
		}
	}
	return tn
}

func (tn *testNet) bridge(name, addr string) {
	tn.ip("link", "add", name, "type", "bridge")
	tn.t.Cleanup(func() { tn.cleanup("link", "del", name) })
	if addr != "" {
		tn.ip("addr", "add", addr, "dev", name)
	}
	tn.ip("link", "set", name, "up")
}

// ip runs an ip command and fails the test if it fails.
func (tn *testNet) ip(args ...string) {
	tn.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		tn.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// cleanup runs an ip command at the end of the test, reporting a failure.
func (tn *testNet) cleanup(args ...string) {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		tn.t.Errorf("cleanup: ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// raftAddr is node i's cluster address, adminAddr its admin API's, and
// serviceAddr the test namespace's address on the service bridge.
func (tn *testNet) raftAddr(i int) string {
	return fmt.Sprintf("%s.%d.%d:7000", netClusterPrefix, tn.octet, i+2)
}

func (tn *testNet) adminAddr(i int) string {
	return fmt.Sprintf("%s.%d.%d:7080", netServicePrefix, tn.octet, i+2)
}

func (tn *testNet) serviceAddr() string { return fmt.Sprintf("%s.%d.1:0", netServicePrefix, tn.octet) }

// exec returns the command line that runs bin with args in node i's
// namespace. `ip netns exec` execs the command itself, so the process the
// test signals is the node.
func (tn *testNet) exec(i int, bin string, args ...string) (string, []string) {
	return "ip", append([]string{"netns", "exec", tn.ns[i], bin}, args...)
}

// cut partitions node i from its peers, in both directions; heal undoes it.
func (tn *testNet) cut(i int)  { tn.ip("-n", tn.ns[i], "link", "set", "eth0", "down") }
func (tn *testNet) heal(i int) { tn.ip("-n", tn.ns[i], "link", "set", "eth0", "up") }
