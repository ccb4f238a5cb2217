package cosigner

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/store"
	"github.com/coterie-mpc/coterie/workspace/verify"
)

func TestLRU(t *testing.T) {
	c := newLRU[string, int](2)
	c.put("a", 1)
	c.put("b", 2)
	if v, ok := c.get("a"); !ok || v != 1 {
		t.Fatalf("get(a) = %d, %t", v, ok)
	}
	c.put("c", 3) // evicts b, the least recently used
	if _, ok := c.get("b"); ok {
		t.Fatal("b survived eviction")
	}
	c.put("a", 10)
	for k, want := range map[string]int{"a": 10, "c": 3} {
		if v, ok := c.get(k); !ok || v != want {
			t.Fatalf("get(%s) = %d, %t; want %d", k, v, ok, want)
		}
	}
	c.deleteFunc(func(k string) bool { return k == "a" })
	if _, ok := c.get("a"); ok || c.len() != 1 {
		t.Fatalf("after deleteFunc: len %d, a present %t", c.len(), ok)
	}

	off := newLRU[string, int](0)
	off.put("a", 1)
	if _, ok := off.get("a"); ok || off.len() != 0 {
		t.Fatal("a zero-capacity cache kept an entry")
	}
}

// openFixture opens the cloud co-signer of the generated 2-of-2 fixture
// (see workspace/internal/fixturegen) and returns it with its signer.
func openFixture(t *testing.T, cacheSize int) (*Cosigners, *protocol.WsUser) {
	t.Helper()
	src := filepath.Join("..", "testdata", "signer-2of2", "ws")
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	scfg := store.DefaultConfig()
	scfg.Path = filepath.Join(dst, "workspace.db")
	st, err := store.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := DefaultConfig()
	cfg.Dir = filepath.Join(dst, "cosigners")
	cfg.PlatformKeyFile = filepath.Join(dst, "sim-platform.key")
	cfg.Count, cfg.Quorum = 1, 2
	cfg.Store = st
	cfg.KeyShareCache = cacheSize
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	users, err := st.Users()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.GetSigningKey() != nil {
			return c, u
		}
	}
	t.Fatal("the fixture has no signer")
	return nil, nil
}

// TestShareCache checks that a cached key share is served only while the
// store still holds the ciphertext it was decrypted from, and that
// dropping a user's shares forgets them.
func TestShareCache(t *testing.T) {
	c, u := openFixture(t, 4)
	p := c.parties["cloud-1"]
	first, err := c.loadShare(u.Id, p)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.loadShare(u.Id, p)
	if err != nil || again != first {
		t.Fatalf("second load: %p, %v; want the cached %p", again, err, first)
	}

	// Re-seal the same share (a fresh nonce, so another ciphertext) behind
	// the cache's back, as a refresh does: the cache must not serve the
	// share it decrypted from the old ciphertext.
	ct, err := c.sealShare(u.Id, p, first)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.store.StageRefresh(u.Id, u.GetSigningKey(), []byte("epoch"), map[string][]byte{string(p.id): ct}); err != nil {
		t.Fatal(err)
	}
	if err := c.store.ActivateRefresh(u.Id, []byte("epoch")); err != nil {
		t.Fatal(err)
	}
	fresh, err := c.loadShare(u.Id, p)
	if err != nil || fresh == first {
		t.Fatalf("load after re-sealing: %p, %v; want a newly decoded share", fresh, err)
	}
	if string(fresh.PublicKey()) != string(first.PublicKey()) {
		t.Fatal("re-sealed share has another public key")
	}
	if cached, _ := c.loadShare(u.Id, p); cached != fresh {
		t.Fatal("the newly decoded share was not cached")
	}

	c.shares.drop("u-other")
	if c.shares.m.len() != 1 {
		t.Fatalf("dropping another user's shares left %d entries", c.shares.m.len())
	}
	c.shares.drop(u.Id)
	if c.shares.m.len() != 0 {
		t.Fatalf("after drop: %d entries", c.shares.m.len())
	}
}

func TestShareCacheOff(t *testing.T) {
	c, u := openFixture(t, 0)
	p := c.parties["cloud-1"]
	a, err := c.loadShare(u.Id, p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.loadShare(u.Id, p)
	if err != nil || a == b {
		t.Fatalf("with KeyShareCache 0, a second load returned %p, %v (first %p)", b, err, a)
	}
}

func TestDerivedKeys(t *testing.T) {
	_, u := openFixture(t, 0)
	key := u.GetSigningKey()
	c := newDerivedKeys(8)
	for i := range uint32(3) {
		d := &protocol.WsDigestToSign{Digest: make([]byte, 32), DerivationPath: []uint32{44, 60, i, 0, 0}}
		want, err := verify.DerivedKey(key, d)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if got, err := c.get(key, d); err != nil || fmt.Sprintf("%x", got) != fmt.Sprintf("%x", want) {
				t.Fatalf("path %v: got %x, %v; want %x", d.DerivationPath, got, err, want)
			}
		}
	}
	if c.m.len() != 3 {
		t.Fatalf("cached %d keys, want 3", c.m.len())
	}
	// A chain code that swallows the first path step is another key, not a
	// cache hit on the shorter path.
	longer := &protocol.WsSigningKey{PublicKey: key.PublicKey, ChainCode: append(append([]byte(nil), key.ChainCode...), 0, 0, 0, 44)}
	d := &protocol.WsDigestToSign{Digest: make([]byte, 32), DerivationPath: []uint32{60, 0, 0, 0}}
	if _, err := c.get(longer, d); err == nil {
		t.Fatal("a 36-byte chain code derived a key")
	}
	if _, err := c.get(&protocol.WsSigningKey{}, d); err == nil {
		t.Fatal("an empty key derived a key")
	}
}
