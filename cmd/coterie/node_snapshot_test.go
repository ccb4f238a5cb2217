package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/bench/check"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/cluster/snapfile"
	"github.com/coterie-mpc/coterie/node"
)

// TestNodeSnapshotSaveInspect saves a running node's snapshot through the
// CLI after pairing an API user (with --json), and inspects it: the file is private,
// signed by the node, summarises the cluster and the user, and holds no
// secret in the clear (the pairing token, which the node must never
// store). A damaged file and one re-signed by a stranger are refused.
func TestNodeSnapshotSaveInspect(t *testing.T) {
	e := startInProcessNode(t, "")
	id, tok := e.approverToken(t)
	out, _, err := runIO(t, tok+"\n", "node", "pair", "--config", e.config, "--token-file", "-", "--json")
	var paired struct{ ID string }
	if err != nil || json.Unmarshal([]byte(out), &paired) != nil || paired.ID != id {
		t.Fatalf("pair --json: %v\n%s", err, out)
	}
	path := filepath.Join(e.dir, "cluster.snap")
	out, err = run(t, "node", "snapshot", "save", "--config", e.config, path)
	if err != nil || !strings.Contains(out, "saved cluster ") || !strings.Contains(out, "from n1 (1 members, 1 API users") {
		t.Fatalf("save: %v\n%s", err, out)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file: %v, mode %v", err, info.Mode())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(tok)) {
		t.Fatal("the snapshot holds the pairing token")
	}

	out, err = run(t, "node", "snapshot", "save", "--config", e.config, path, "--json")
	var saved struct{ Summary snapfile.Summary }
	if err != nil || json.Unmarshal([]byte(out), &saved) != nil || saved.Summary.Signer != "n1" {
		t.Fatalf("save --json: %v\n%s", err, out)
	}
	out, err = run(t, "node", "snapshot", "inspect", path, "--json")
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	var got struct {
		Header  snapfile.Header
		Summary snapfile.Summary
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, out)
	}
	if got.Summary.Signer != "n1" || got.Summary.APIUsers != 1 || got.Header.ClusterID == "" || got.Header.ClusterID != got.Summary.ClusterID {
		t.Fatalf("inspect: %+v", got)
	}
	if out, err := run(t, "node", "snapshot", "inspect", path); err != nil || !strings.Contains(out, "saved") || !strings.Contains(out, "by n1") {
		t.Fatalf("inspect: %v\n%s", err, out)
	}

	damaged := filepath.Join(e.dir, "damaged.snap")
	bad := bytes.Clone(data)
	bad[len(bad)-1] ^= 1
	if err := os.WriteFile(damaged, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "node", "snapshot", "inspect", damaged); !errors.Is(err, snapfile.ErrChecksum) {
		t.Fatalf("a damaged state: %v", err)
	}

	// A stranger re-signs the state: the file checks, but its signer is
	// no member of the cluster it holds.
	h, state, err := snapfile.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	_, stranger, _ := ed25519.GenerateKey(nil)
	var resigned bytes.Buffer
	if err := snapfile.Write(&resigned, h, state, stranger); err != nil {
		t.Fatal(err)
	}
	forged := filepath.Join(e.dir, "forged.snap")
	if err := os.WriteFile(forged, resigned.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "node", "snapshot", "inspect", forged); !errors.Is(err, snapfile.ErrSigner) {
		t.Fatalf("a file signed by a stranger: %v", err)
	}
}

// cliErr runs a coterie command as a process and returns its standard
// output and error output, and its error.
func (c *testCluster) cliErr(args ...string) (string, string, error) {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	return string(out), stderr.String(), err
}

// TestClusterSnapshotRestore saves a snapshot of three real nodes, lets the
// cluster sign on (using presignatures the snapshot holds as available),
// and restores it with the CLI: a damaged file, another cluster's
// snapshot, a restore through a follower and one off a terminal without
// --yes are refused, each naming why; the restore burns every
// presignature the snapshot held live, the pools refill, and requests
// submitted after it are signed, each once with its own presignature.
func TestClusterSnapshotRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	c := newTestCluster(t, 1)
	c.pair(0)
	c.waitDone(c.submit(2, "before the snapshot"), 2*time.Minute)
	lead, followers := c.leader()

	path := filepath.Join(c.dir, "cluster.snap")
	c.cli(1, "node", "snapshot", "save", "--config", followers[0].conf, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, state, err := snapfile.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	saved := cluster.NewFSM()
	if err := saved.Restore(io.NopCloser(bytes.NewReader(state))); err != nil {
		t.Fatal(err)
	}
	var live []string
	for _, p := range saved.Presignatures() {
		if p.Status == cluster.PresignatureAvailable || p.Status == cluster.PresignatureReserved {
			live = append(live, p.ID)
		}
	}
	if len(live) < 2 {
		t.Fatalf("the snapshot holds %d live presignatures, want 2 or more to burn", len(live))
	}
	// One of them is used after the snapshot; the pool refills.
	c.waitDone(c.submit(1, "after the snapshot"), 2*time.Minute)
	waitFor(t, 2*time.Minute, "the pool to refill", func() bool {
		fsm, err := check.FromNode(c.ctx(), lead.ac)
		if err != nil {
			return false
		}
		n := 0
		for _, p := range fsm.Presignatures {
			if p.Status == "available" {
				n++
				if !slices.Contains(live, p.ID) {
					live = append(live, p.ID)
				}
			}
		}
		return n >= 2
	}, c.procs()...)

	damaged := filepath.Join(c.dir, "damaged.snap")
	bad := bytes.Clone(data)
	bad[len(bad)-2] ^= 1
	if err := os.WriteFile(damaged, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	other := startInProcessNode(t, "")
	otherPath := filepath.Join(c.dir, "other.snap")
	if _, err := run(t, "node", "snapshot", "save", "--config", other.config, otherPath); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a damaged file", []string{"--config", lead.conf, damaged, "--yes"}, "the state does not match the header's checksum"},
		{"another cluster", []string{"--config", lead.conf, otherPath, "--yes"}, "this cluster is " + saved.ClusterID()},
		{"through a follower", []string{"--config", followers[0].conf, path, "--yes"}, "a restore runs on the leader"},
		{"off a terminal without --yes", []string{"--config", lead.conf, path}, "not on a terminal; pass --yes"},
	} {
		_, stderr, err := c.cliErr(append([]string{"node", "snapshot", "restore"}, tc.args...)...)
		if err == nil || !strings.Contains(stderr, tc.want) {
			t.Fatalf("%s: %v, want a refusal mentioning %q:\n%s", tc.name, err, tc.want, stderr)
		}
	}

	out := c.cli(0, "node", "snapshot", "restore", "--config", lead.conf, path, "--yes", "--json")
	var done node.RestoreAnswer
	if err := json.Unmarshal([]byte(out), &done); err != nil {
		t.Fatalf("restore --json: %v\n%s", err, out)
	}
	if r := done.Report; r.DryRun || r.ClusterID != saved.ClusterID() || r.Burned == 0 || r.SnapshotIndex != saved.AppliedIndex() {
		t.Fatalf("restore report %+v", r)
	}
	for _, n := range c.nodes {
		waitFor(t, 30*time.Second, n.id+" to burn the snapshot's presignatures", func() bool {
			fsm, err := check.FromNode(c.ctx(), n.ac)
			if err != nil {
				return false
			}
			status := map[string]string{}
			for _, p := range fsm.Presignatures {
				status[p.ID] = p.Status
			}
			for _, id := range live {
				if s := status[id]; s == "available" || s == "reserved" {
					return false
				}
			}
			return true
		}, c.procs()...)
	}
	c.waitMembers(3)
	c.waitDone(c.submit(3, "after the restore"), 2*time.Minute)
	c.checkInvariants()
}
