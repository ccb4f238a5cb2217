package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave/enclavetest"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/enclave/store"
)

// TestFileSaver: changes asked for while a save runs are taken by one
// later save; a failed save is tried again after keeperRetry on the
// node's clock; close ends the saver.
func TestFileSaver(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	calls := make(chan chan error)
	s := newFileSaver(func(context.Context) error {
		answer := make(chan error)
		calls <- answer
		return <-answer
	}, clk, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	next := func() chan error {
		select {
		case c := <-calls:
			return c
		case <-ctx.Done():
			t.Fatal("no save")
			return nil
		}
	}

	s.changed()
	first := next()
	s.changed() // while the first save runs
	s.changed() // coalesced with the one before
	first <- nil
	next() <- errors.New("parent unreachable")
	// The retry waits keeperRetry on the clock, and no save runs before.
	if err := clk.WaitForTimerAt(ctx, keeperRetry); err != nil {
		t.Fatal(err)
	}
	select {
	case <-calls:
		t.Fatal("a save ran before the retry delay")
	default:
	}
	if s.stale() != 1 {
		t.Fatal("a failed save does not show as stale")
	}
	clk.Advance(keeperRetry)
	next() <- nil
	select {
	case <-calls:
		t.Fatal("a save ran with no change asked for")
	case <-time.After(50 * time.Millisecond):
	}
	if s.stale() != 0 {
		t.Fatal("a successful save still shows as stale")
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
}

// fakeKeeper keeps files in memory, records the order of calls, and fails
// the calls on the names in fail.
type fakeKeeper struct {
	mu    sync.Mutex
	files map[string][]byte
	fail  map[string]bool
	calls []string
}

func (k *fakeKeeper) Get(_ context.Context, name string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = append(k.calls, "get "+name)
	if k.fail[name] {
		return nil, errors.New("keeper unreachable")
	}
	b, ok := k.files[name]
	if !ok {
		return nil, fmt.Errorf("no %s: %w", name, fs.ErrNotExist)
	}
	return b, nil
}

func (k *fakeKeeper) Put(_ context.Context, name string, data []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = append(k.calls, "put "+name)
	if k.fail[name] {
		return errors.New("keeper full")
	}
	k.files[name] = slices.Clone(data)
	return nil
}

// lastingNode is a Node with a sealed store in a fresh data directory, as
// far as restoreFiles and saveFiles need one.
func lastingNode(t *testing.T) *Node {
	dir := t.TempDir()
	n := &Node{cfg: Config{NodeID: "n4", DataDir: dir, Enclave: EnclaveConfig{Kind: "sim"},
		Cluster: ClusterConfig{JoinTokenFile: filepath.Join(dir, "join-token")}}, log: slog.New(slog.DiscardHandler)}
	enc := enclavetest.NewMachine(t).Enclave(dir, nil)
	_, key, _ := ed25519.GenerateKey(nil)
	kr, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	scfg := store.DefaultConfig()
	scfg.Dir, scfg.Logger = dir, slog.New(slog.DiscardHandler)
	if err := store.Create(scfg, enc, key, kr); err != nil {
		t.Fatal(err)
	}
	if n.store, err = store.Open(scfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.store.Close() })
	return n
}

// TestSaveRestoreFiles: the sealed store is saved last and restored last,
// so that its presence says the set is whole; the admin token is never
// kept; a failure leaves no store in the data directory, so the next
// start restores again; the join token is restored from beside the copies.
func TestSaveRestoreFiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := lastingNode(t)
	if err := os.WriteFile(filepath.Join(n.cfg.DataDir, AdminTokenFile), []byte("secret-admin-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	k := &fakeKeeper{files: map[string][]byte{}, fail: map[string]bool{}}
	if err := n.saveFiles(ctx, k); err != nil {
		t.Fatal(err)
	}
	if want := []string{"put sim-root", "put node.db"}; !slices.Equal(k.calls, want) {
		t.Fatalf("saves %v, want %v", k.calls, want)
	}
	if _, ok := k.files[AdminTokenFile]; ok {
		t.Fatal("the admin token was kept outside the node")
	}

	// A failed save of the data file stores no sealed store.
	k2 := &fakeKeeper{files: map[string][]byte{}, fail: map[string]bool{"sim-root": true}}
	if err := n.saveFiles(ctx, k2); err == nil {
		t.Fatal("a failed save succeeded")
	}
	if _, ok := k2.files["node.db"]; ok {
		t.Fatal("the sealed store was kept without the files it needs")
	}

	// An empty data directory is restored, the store last, with the join
	// token that waits beside the copies.
	k.files["join-token"] = []byte("token")
	k.calls = nil
	m := &Node{cfg: n.cfg, log: n.log}
	m.cfg.DataDir = t.TempDir()
	m.cfg.Cluster.JoinTokenFile = filepath.Join(m.cfg.DataDir, "join-token")
	k.fail["node.db"] = true
	if err := m.restoreFiles(k); err == nil {
		t.Fatal("a failed restore succeeded")
	}
	if exists, _ := store.Exists(m.cfg.DataDir); exists {
		t.Fatal("a failed restore left a sealed store, so the next start would not restore")
	}
	k.fail["node.db"] = false
	k.calls = nil
	if err := m.restoreFiles(k); err != nil {
		t.Fatal(err)
	}
	if want := []string{"get join-token", "get sim-root", "get node.db"}; !slices.Equal(k.calls, want) {
		t.Fatalf("restores %v, want %v", k.calls, want)
	}
	for name, want := range k.files {
		if got, err := os.ReadFile(filepath.Join(m.cfg.DataDir, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("restored %s: %v", name, err)
		}
	}
	// A data directory with a store keeps its own files.
	k.calls = nil
	if err := m.restoreFiles(k); err != nil || len(k.calls) != 0 {
		t.Fatalf("restore over a store: %v, calls %v", err, k.calls)
	}
}
