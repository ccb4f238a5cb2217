package cluster

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// privateSnapshots is raft's file snapshot store with private file modes.
// raft makes each snapshot's directory 0755 and its files 0644 (less the
// umask), but everything in a node's data directory is the node's alone:
// 0700 for directories, 0600 for files. Create tightens the new snapshot's
// directory and files as soon as raft has made them, before any state is
// written; raft rewrites meta.json in place and renames the directory at
// the end, which both keep the modes.
type privateSnapshots struct {
	raft.SnapshotStore
	// dir is the snapshot store's directory.
	dir string
}

// Create starts a snapshot as raft's store does, then makes it private.
func (s privateSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	if err := makePrivate(s.dir); err != nil {
		_ = sink.Cancel()
		return nil, err
	}
	return sink, nil
}

// makePrivate sets every directory under root, root included, to 0700 and
// every file to 0600.
func makePrivate(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm() != want {
			if err := os.Chmod(path, want); err != nil {
				return fmt.Errorf("cluster: make %s private: %w", path, err)
			}
		}
		return nil
	})
}
