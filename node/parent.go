package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/backend"
	"github.com/coterie-mpc/coterie/enclave/store"
	"github.com/coterie-mpc/coterie/internal/atomicfile"
	"github.com/coterie-mpc/coterie/internal/bridge"
)

// parentCallTimeout bounds one save to, or restore from, the parent.
const parentCallTimeout = 30 * time.Second

// parentRetry is how long the node waits before saving again after a
// failed save.
const parentRetry = 10 * time.Second

// parentFiles returns the files the node keeps on its parent
// (storage.parent): its sealed store, its enclave's data files, and its
// admin token. Everything else in the data directory is raft's, which a
// non-voter gets back from the leader, or rewritten at every start.
func (n *Node) parentFiles() []string {
	kind, _ := enclave.ParseKind(n.cfg.Enclave.Kind)
	return append(append([]string{store.FileName}, backend.DataFiles(kind)...), AdminTokenFile)
}

// restoreFromParent fills a data directory without a sealed store from
// the parent's copies, so that a node whose data directory did not outlive
// it (a restarted Nitro enclave) comes back as the same member. A data
// directory with a store keeps its own files; on the first start the
// parent has nothing to restore.
func (n *Node) restoreFromParent(files *bridge.Files) error {
	exists, err := store.Exists(n.cfg.DataDir)
	if err != nil || exists {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), parentCallTimeout)
	defer cancel()
	var restored []string
	for _, name := range n.parentFiles() {
		b, err := files.Get(ctx, name)
		if errors.Is(err, bridge.ErrNoFile) {
			continue
		}
		if err != nil {
			return fmt.Errorf("node: restoring the data directory from storage.parent: %w", err)
		}
		if err := atomicfile.Write(filepath.Join(n.cfg.DataDir, name), b, 0o600); err != nil {
			return fmt.Errorf("node: restoring %s from storage.parent: %w", name, err)
		}
		restored = append(restored, name)
	}
	if len(restored) > 0 {
		n.log.Info("data directory restored from the parent", "files", restored)
	}
	return nil
}

// saveToParent replaces the parent's copies with the node's own files.
func (n *Node) saveToParent(ctx context.Context, files *bridge.Files) error {
	for _, name := range n.parentFiles() {
		var b []byte
		var err error
		if name == store.FileName {
			b, err = n.store.Copy()
		} else if b, err = os.ReadFile(filepath.Join(n.cfg.DataDir, name)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("node: saving %s to storage.parent: %w", name, err)
		}
		if err := files.Put(ctx, name, b); err != nil {
			return fmt.Errorf("node: saving to storage.parent: %w", err)
		}
	}
	return nil
}

// parentSaver saves the node's files to its parent in the background
// after each change of the sealed store, which the FSM's apply can make:
// it must not wait on the network. Changes that come while a save runs
// are taken by the next one; a failed save is tried again after
// parentRetry, until one succeeds.
type parentSaver struct {
	save  func(context.Context) error
	clock clock.Clock
	log   *slog.Logger

	dirty  chan struct{} // one pending change at most
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newParentSaver(save func(context.Context) error, clk clock.Clock, log *slog.Logger) *parentSaver {
	ctx, cancel := context.WithCancel(context.Background())
	s := &parentSaver{save: save, clock: clk, log: log, dirty: make(chan struct{}, 1), cancel: cancel}
	s.wg.Add(1)
	go s.run(ctx)
	return s
}

// changed asks for a save; it never blocks.
func (s *parentSaver) changed() {
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

func (s *parentSaver) run(ctx context.Context) {
	defer s.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dirty:
		}
		for {
			cctx, cancel := context.WithTimeout(ctx, parentCallTimeout)
			err := s.save(cctx)
			cancel()
			if err == nil || ctx.Err() != nil {
				break
			}
			s.log.Error("saving the data directory's files to the parent failed; trying again", "err", err, "in", parentRetry)
			if clock.Sleep(ctx, s.clock, parentRetry) != nil {
				return
			}
		}
	}
}

// close stops the saver; a save in progress is cancelled.
func (s *parentSaver) close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// storeChanged has the sealed store saved to the parent, when the node
// keeps a copy there. Until New has made the first save, that save covers
// the change.
func (n *Node) storeChanged() {
	if s := n.parent.Load(); s != nil {
		s.changed()
	}
}
