package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/backend"
	"github.com/coterie-mpc/coterie/enclave/store"
	"github.com/coterie-mpc/coterie/internal/atomicfile"
	"github.com/coterie-mpc/coterie/internal/bridge"
)

// keeperCallTimeout bounds one save or restore of the lasting files.
const keeperCallTimeout = 30 * time.Second

// keeperRetry is how long the node waits before saving again after a
// failed save.
const keeperRetry = 10 * time.Second

// keeper keeps copies of a node's lasting files outside its data
// directory: the parent's file store (bridge.Files) or a Cloud Storage
// bucket (backend.ConfidentialSpaceFiles). Get of a file it does not keep is an
// fs.ErrNotExist. Its methods may be called concurrently.
type keeper interface {
	Get(ctx context.Context, name string) ([]byte, error)
	Put(ctx context.Context, name string, data []byte) error
}

var (
	_ keeper = (*bridge.Files)(nil)
	_ keeper = (backend.Files)(nil)
)

// keeper returns where the node keeps its lasting files (the storage
// section), nil when its data directory outlives it.
func (n *Node) keeper() (keeper, error) {
	switch s := n.cfg.Storage; {
	case s.Parent != "":
		a, err := bridge.ParseAddr(s.Parent)
		if err != nil {
			return nil, err
		}
		return bridge.NewFiles(a), nil
	case s.Bucket != "":
		return backend.ConfidentialSpaceFiles(n.backendConfig(), s.Bucket, n.cfg.NodeID+"/")
	}
	return nil, nil
}

// lastingFiles returns the files the node keeps outside its data
// directory: its enclave's data files, then its sealed store, which is
// saved last and restored last, so that its presence says the set is
// whole. Everything else in the data directory is raft's, which a
// non-voter gets back from the leader, or made anew at every start: the
// admin token above all, which would let whoever keeps the copies (the
// parent instance) change what the cluster trusts and approves.
func (n *Node) lastingFiles() []string {
	kind, _ := enclave.ParseKind(n.cfg.Enclave.Kind)
	return append(slices.Clone(backend.DataFiles(kind)), store.FileName)
}

// restoreFiles fills a data directory without a sealed store from the
// kept copies, so that a node whose data directory did not outlive it (a
// restarted enclave) comes back as the same member. A data directory with
// a store keeps its own files. On the first start there is nothing to
// restore but, when cluster.join_token_file is in the data directory, the
// join token that the operator put beside the copies: an enclave's image
// cannot carry a one-time token.
func (n *Node) restoreFiles(k keeper) error {
	exists, err := store.Exists(n.cfg.DataDir)
	if err != nil || exists {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), keeperCallTimeout)
	defer cancel()
	names := n.lastingFiles()
	if jt := n.cfg.Cluster.JoinTokenFile; jt != "" && filepath.Dir(jt) == filepath.Clean(n.cfg.DataDir) {
		names = append([]string{filepath.Base(jt)}, names...)
	}
	var restored []string
	for _, name := range names {
		b, err := k.Get(ctx, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("node: restoring the data directory from its storage: %w", err)
		}
		if err := atomicfile.Write(filepath.Join(n.cfg.DataDir, name), b, 0o600); err != nil {
			return fmt.Errorf("node: restoring %s: %w", name, err)
		}
		restored = append(restored, name)
	}
	if len(restored) > 0 {
		n.log.Info("data directory restored from its storage", "files", restored)
	}
	return nil
}

// saveFiles replaces the kept copies with the node's own files.
func (n *Node) saveFiles(ctx context.Context, k keeper) error {
	for _, name := range n.lastingFiles() {
		var b []byte
		var err error
		if name == store.FileName {
			b, err = n.store.Copy()
		} else if b, err = os.ReadFile(filepath.Join(n.cfg.DataDir, name)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("node: saving %s: %w", name, err)
		}
		if err := k.Put(ctx, name, b); err != nil {
			return fmt.Errorf("node: saving the lasting files: %w", err)
		}
	}
	return nil
}

// fileSaver saves the node's lasting files in the background after each
// change of the sealed store, which the FSM's apply can make: it must not
// wait on the network. Changes that come while a save runs are taken by
// the next one; a failed save is tried again after keeperRetry, until one
// succeeds. Saves never overlap, so a later save always copies a later
// store.
type fileSaver struct {
	save  func(context.Context) error
	clock clock.Clock
	log   *slog.Logger

	saving  sync.Mutex  // held during each save
	failing atomic.Bool // the last save failed

	dirty  chan struct{} // one pending change at most
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newFileSaver(save func(context.Context) error, clk clock.Clock, log *slog.Logger) *fileSaver {
	ctx, cancel := context.WithCancel(context.Background())
	s := &fileSaver{save: save, clock: clk, log: log, dirty: make(chan struct{}, 1), cancel: cancel}
	s.wg.Add(1)
	go s.run(ctx)
	return s
}

// changed asks for a save; it never blocks.
func (s *fileSaver) changed() {
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

func (s *fileSaver) run(ctx context.Context) {
	defer s.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dirty:
		}
		for {
			cctx, cancel := context.WithTimeout(ctx, keeperCallTimeout)
			err := s.saveNow(cctx)
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil || clock.Sleep(ctx, s.clock, keeperRetry) != nil {
				s.changed() // close makes the last try
				return
			}
			s.log.Error("saving the lasting files failed; trying again", "err", err, "in", keeperRetry)
		}
	}
}

// saveNow saves at once, after any save in progress.
func (s *fileSaver) saveNow(ctx context.Context) error {
	s.saving.Lock()
	defer s.saving.Unlock()
	err := s.save(ctx)
	s.failing.Store(err != nil)
	return err
}

// stale is 1 while the last save failed, for a gauge.
func (s *fileSaver) stale() float64 {
	if s.failing.Load() {
		return 1
	}
	return 0
}

// close stops the saver, then makes one last save, bounded by
// keeperCallTimeout, if a change waits: the node calls it once the store
// can change no more.
func (s *fileSaver) close() error {
	s.cancel()
	s.wg.Wait()
	select {
	case <-s.dirty:
	default:
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), keeperCallTimeout)
	defer cancel()
	if err := s.saveNow(ctx); err != nil {
		s.log.Error("the last save of the lasting files failed: the kept copies are older than this data directory", "err", err)
	}
	return nil
}

// saveLasting saves the lasting files at once, when the node keeps copies:
// a node whose identity is not kept would come back from a restart as
// nobody, so New fails without that copy.
func (n *Node) saveLasting() error {
	s := n.saver.Load()
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), keeperCallTimeout)
	defer cancel()
	return s.saveNow(ctx)
}

// storeChanged has the lasting files saved, when the node keeps copies.
func (n *Node) storeChanged() {
	if s := n.saver.Load(); s != nil {
		s.changed()
	}
}
