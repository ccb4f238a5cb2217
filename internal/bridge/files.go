package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/net/netutil"

	"github.com/coterie-mpc/coterie/internal/atomicfile"
)

// MaxFileBytes bounds one file the parent keeps for a node.
const MaxFileBytes = 16 << 20

// filesPath is where the parent's file store serves: GET and PUT of
// filesPath+NAME.
const filesPath = "/v1/files/"

// validName is a file name the store accepts: no directories, no dot
// files, nothing a shell or a path could misread.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ErrNoFile is returned by Files.Get for a file the parent does not keep;
// it is an fs.ErrNotExist.
var ErrNoFile = fmt.Errorf("bridge: the parent keeps no such file: %w", fs.ErrNotExist)

// FileStore keeps, on the parent instance, copies of the few files a node
// inside an enclave needs after a restart (its sealed store, its data key
// file): the enclave's own filesystem is in memory. Every file it holds is
// sealed or public to the parent anyway. It is an http.Handler: GET and PUT
// of /v1/files/NAME, each PUT replacing the file atomically and durably.
type FileStore struct {
	dir string
	log *slog.Logger
}

var _ http.Handler = (*FileStore)(nil)

// NewFileStore serves the files of dir, which must exist.
func NewFileStore(dir string, log *slog.Logger) (*FileStore, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("bridge: file store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("bridge: file store: %s is not a directory", dir)
	}
	return &FileStore{dir: dir, log: log}, nil
}

func (s *FileStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, filesPath)
	if !ok || !validName.MatchString(name) {
		http.Error(w, "no such file name", http.StatusNotFound)
		return
	}
	path := filepath.Join(s.dir, name)
	switch r.Method {
	case http.MethodGet:
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			http.Error(w, "no such file", http.StatusNotFound)
		case err != nil:
			s.log.Error("bridge: file store read", "file", name, "err", err)
			http.Error(w, "read failed", http.StatusInternalServerError)
		default:
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(b)
		}
	case http.MethodPut:
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxFileBytes))
		if err != nil {
			http.Error(w, fmt.Sprintf("body unreadable or over %d bytes", MaxFileBytes), http.StatusRequestEntityTooLarge)
			return
		}
		if err := atomicfile.Write(path, b, 0o600); err != nil {
			s.log.Error("bridge: file store write", "file", name, "err", err)
			http.Error(w, "write failed", http.StatusInsufficientStorage)
			return
		}
		s.log.Info("bridge: file stored", "file", name, "bytes", len(b))
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, PUT")
		http.Error(w, "GET or PUT", http.StatusMethodNotAllowed)
	}
}

// ServeFiles serves s on ln, at most maxConns connections at once, until
// ctx ends; it returns ctx.Err() then, or the server's error.
func ServeFiles(ctx context.Context, ln net.Listener, s *FileStore, maxConns int) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	ln = netutil.LimitListener(ln, maxConns)
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return ctx.Err()
}

// Files is the node's client of its parent's FileStore. It is safe for
// concurrent use.
type Files struct {
	client *http.Client
}

// NewFiles returns a client of the FileStore at a.
func NewFiles(a Addr) *Files {
	return &Files{client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return a.Dial(ctx) },
	}}}
}

// Get returns the parent's copy of name, or ErrNoFile.
func (f *Files) Get(ctx context.Context, name string) ([]byte, error) {
	resp, err := f.do(ctx, http.MethodGet, name, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		b, err := io.ReadAll(io.LimitReader(resp.Body, MaxFileBytes+1))
		if err != nil {
			return nil, fmt.Errorf("bridge: get %s from the parent: %w", name, err)
		}
		if len(b) > MaxFileBytes {
			return nil, fmt.Errorf("bridge: get %s from the parent: over %d bytes", name, MaxFileBytes)
		}
		return b, nil
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s", ErrNoFile, name)
	}
	return nil, fmt.Errorf("bridge: get %s from the parent: %s", name, resp.Status)
}

// Put replaces the parent's copy of name with data.
func (f *Files) Put(ctx context.Context, name string, data []byte) error {
	resp, err := f.do(ctx, http.MethodPut, name, data)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("bridge: put %s on the parent: %s", name, resp.Status)
	}
	return nil
}

func (f *Files) do(ctx context.Context, method, name string, body []byte) (*http.Response, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("bridge: %q is not a file name the parent keeps", name)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://parent"+filesPath+name, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bridge: %s %s on the parent: %w", method, name, err)
	}
	return resp, nil
}
