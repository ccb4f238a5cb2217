package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/coterie-mpc/coterie/node"
)

// cliIn runs a coterie command as a process with stdin and returns its
// standard output, error output and error.
func (c *testCluster) cliIn(stdin string, args ...string) (string, string, error) {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	return string(out), stderr.String(), err
}

// TestDisasterRecovery rebuilds a one-node cluster whose enclave is lost,
// as an operator would: with the node's config listing a recovery key, the
// operator exports the keyring to it (an export to a key the config does
// not list is refused) and saves a snapshot; the node and its data
// directory are destroyed; a new node imports the keyring (another
// identity is refused, and the identity never appears in any output),
// bootstraps under the old cluster id, takes the snapshot, serves the API
// user again and signs, each request once with its own presignature.
func TestDisasterRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	c := newTestClusterOf(t, 1, 1)
	n := c.nodes[0]
	recovery, _ := age.GenerateX25519Identity()
	stranger, _ := age.GenerateX25519Identity()
	n.proc.stop()
	conf, err := os.ReadFile(n.conf)
	if err != nil {
		t.Fatal(err)
	}
	conf = append(conf, []byte("recovery:\n  recipients: ["+recovery.Recipient().String()+"]\n")...)
	if err := os.WriteFile(n.conf, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	c.run(0)
	c.pair(0)
	c.waitDone(c.submit(2, "before the disaster"), 2*time.Minute)

	exported := filepath.Join(c.dir, "keyring.age")
	if _, stderr, err := c.cliErr("node", "keyring", "export", "--config", n.conf, "--recipient", stranger.Recipient().String(), "--out", exported); err == nil ||
		!strings.Contains(stderr, "not a recovery recipient") {
		t.Fatalf("export to an unlisted key: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(exported); !os.IsNotExist(err) {
		t.Fatal("a refused export wrote a file")
	}
	c.cli(0, "node", "keyring", "export", "--config", n.conf, "--out", exported)
	if info, err := os.Stat(exported); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("recovery file: %v", err)
	}
	snap := filepath.Join(c.dir, "cluster.snap")
	c.cli(0, "node", "snapshot", "save", "--config", n.conf, snap)
	st, err := n.ac.Status(c.ctx())
	if err != nil {
		t.Fatal(err)
	}
	clusterID := st.Cluster.ClusterID

	// The disaster: the node and everything its enclave sealed are gone.
	n.proc.kill()
	if err := os.RemoveAll(n.cfg.DataDir); err != nil {
		t.Fatal(err)
	}

	out, stderr, err := c.cliIn(stranger.String(), "node", "keyring", "import", "--config", n.conf, "--identity", "-", exported)
	if err == nil || !strings.Contains(stderr, "not encrypted to this identity") || strings.Contains(stderr+out, stranger.String()) {
		t.Fatalf("import with another identity: %v\n%s", err, stderr)
	}
	out, stderr, err = c.cliIn(recovery.String(), "node", "keyring", "import", "--config", n.conf, "--identity", "-", exported)
	if err != nil || !strings.Contains(out, "keyring of cluster "+clusterID) || strings.Contains(stderr+out, recovery.String()) {
		t.Fatalf("import: %v\n%s\n%s", err, out, stderr)
	}
	n.ac = nil // a new admin token came with the new data directory
	c.run(0)
	if st, err := n.ac.Status(c.ctx()); err != nil || st.Cluster.ClusterID != clusterID {
		t.Fatalf("the rebuilt node runs cluster %q (%v), want %s", st.Cluster.ClusterID, err, clusterID)
	}
	out = c.cli(0, "node", "snapshot", "restore", "--config", n.conf, snap, "--yes", "--json")
	var done node.RestoreAnswer
	if err := json.Unmarshal([]byte(out), &done); err != nil || done.Report.APIUsers != 1 || done.Report.KeyRecords == 0 {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "the rebuilt node to serve the user", func() bool {
		users, err := n.ac.Users(c.ctx())
		return err == nil && len(users) == 1
	}, c.procs()...)
	c.waitDone(c.submit(2, "after the recovery"), 2*time.Minute)
	c.checkInvariants()
}
