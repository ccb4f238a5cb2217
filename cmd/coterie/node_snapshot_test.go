package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coterie-mpc/coterie/cluster/snapfile"
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
	if _, err := run(t, "node", "snapshot", "inspect", forged); !errors.Is(err, errNotAMember) {
		t.Fatalf("a file signed by a stranger: %v", err)
	}
}
