package bridge

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// startFiles serves a FileStore over a unix socket and returns its
// directory and a client.
func startFiles(t *testing.T) (string, *Files) {
	t.Helper()
	dir := t.TempDir()
	s, err := NewFileStore(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a := Addr{Kind: Unix, Path: filepath.Join(t.TempDir(), "files.sock")}
	ln, err := a.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeFiles(ctx, ln, s, 8) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("ServeFiles = %v", err)
		}
	})
	return dir, NewFiles(a)
}

// TestFiles: a file put is got back and lands in the directory with mode
// 0600; a file never put is ErrNoFile; a put replaces; names that could
// leave the directory, and files over the bound, are refused.
func TestFiles(t *testing.T) {
	dir, f := startFiles(t)
	ctx := ctxT(t)
	if _, err := f.Get(ctx, "node.db"); !errors.Is(err, ErrNoFile) {
		t.Fatalf("Get of a file never put = %v, want ErrNoFile", err)
	}
	for _, data := range [][]byte{[]byte("sealed v1"), []byte("sealed v2, longer")} {
		if err := f.Put(ctx, "node.db", data); err != nil {
			t.Fatal(err)
		}
		got, err := f.Get(ctx, "node.db")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Get = %q, %v; want %q", got, err, data)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "node.db"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stored file: %v, %v", fi, err)
	}
	if err := f.Put(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := f.Get(ctx, "empty"); err != nil || len(got) != 0 {
		t.Fatalf("empty file = %q, %v", got, err)
	}
	for _, name := range []string{"", ".hidden", "../escape", "a/b", strings.Repeat("x", 65)} {
		if err := f.Put(ctx, name, []byte("x")); err == nil {
			t.Errorf("Put(%q) succeeded", name)
		}
	}
	if err := f.Put(ctx, "big", make([]byte, MaxFileBytes+1)); err == nil || !strings.Contains(err.Error(), "413") {
		t.Errorf("Put over the bound = %v, want 413", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("the store directory holds %d entries, want node.db and empty", len(entries))
	}
}

// TestFilesUnwritable: a store that cannot write a file (here its name is
// taken by a directory, which even root cannot replace with a file)
// answers an error and leaves nothing behind; the other files are kept.
func TestFilesUnwritable(t *testing.T) {
	dir, f := startFiles(t)
	ctx := ctxT(t)
	if err := f.Put(ctx, "node.db", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sim-root", "taken"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := f.Put(ctx, "sim-root", []byte("x")); err == nil || !strings.Contains(err.Error(), "507") {
		t.Fatalf("Put over a directory = %v, want 507", err)
	}
	if got, _ := f.Get(ctx, "node.db"); string(got) != "v1" {
		t.Fatalf("after a failed Put the store holds %q", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("the store holds %d entries after a failed Put, want node.db and the directory", len(entries))
	}
}

// TestFilesNoParent: with no store listening, Get and Put fail with an
// error, not ErrNoFile.
func TestFilesNoParent(t *testing.T) {
	f := NewFiles(Addr{Kind: Unix, Path: filepath.Join(t.TempDir(), "none.sock")})
	if _, err := f.Get(ctxT(t), "node.db"); err == nil || errors.Is(err, ErrNoFile) {
		t.Fatalf("Get without a parent = %v", err)
	}
	if err := f.Put(ctxT(t), "node.db", []byte("x")); err == nil {
		t.Fatal("Put without a parent succeeded")
	}
}

// TestFileStoreNames: the store itself, not only its client, refuses
// names that could leave its directory or reach its temporary files.
func TestFileStoreNames(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewFileStore(filepath.Join(dir, "store"), slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("NewFileStore accepted a directory that does not exist")
	}
	if err := os.Mkdir(filepath.Join(dir, "store"), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := NewFileStore(filepath.Join(dir, "store"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/v1/files/..%2Fescape", "/v1/files/.hidden", "/v1/files/a%2Fb", "/v1/files/", "/v1/other/x"} {
		req := httptest.NewRequest(http.MethodPut, target, strings.NewReader("x"))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusNotFound {
			t.Errorf("PUT %s = %d, want 404", target, w.Code)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d entries beside the store, want none", len(entries)-1)
	}
	req := httptest.NewRequest(http.MethodDelete, "/v1/files/node.db", nil)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE = %d, want 405", w.Code)
	}
}
