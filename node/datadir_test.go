package node

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestDataDirIsPrivate starts a node in a data directory that the operator
// made with the usual 0755, takes a raft snapshot (whose store makes
// directories and files of its own), stops it, and checks that everything
// in the data directory is private to the node's user.
func TestDataDirIsPrivate(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	if err := os.Mkdir(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, cfg)
	if err := n.Cluster().Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	var files int
	err := filepath.WalkDir(cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if got := info.Mode().Perm(); got != want {
			rel, _ := filepath.Rel(cfg.DataDir, path)
			t.Errorf("%s has mode %v, want %v", rel, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// node.db, sim-root, raft.db, the snapshot's state and meta, the admin
	// token and address at least.
	if files < 7 {
		t.Fatalf("walked only %d files", files)
	}
}
