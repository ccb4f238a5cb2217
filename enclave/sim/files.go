package sim

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// RootFile is the name of the simulated sealing root in the data directory.
const RootFile = "sim-root"

// secretSize is the size of the root and of the platform key seed.
const secretSize = 32

// loadOrCreateSecret reads the 32-byte secret at path. If the file does not
// exist and create is set, it writes a fresh random one, mode 0600, without
// ever replacing a file that another process wrote first. It reports whether
// it created the file.
func loadOrCreateSecret(path string, create bool, what string) (secret []byte, created bool, err error) {
	secret, err = readSecret(path, what)
	switch {
	case err == nil || !errors.Is(err, fs.ErrNotExist):
		return secret, false, err
	case !create:
		return nil, false, fmt.Errorf("%w: no %s %s", ErrNoRoot, what, path)
	}
	fresh := make([]byte, secretSize)
	rand.Read(fresh)
	err = writeNewFile(path, fresh)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it between our read and our write.
		secret, err = readSecret(path, what)
		return secret, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("sim: write %s %s: %w", what, path, err)
	}
	return fresh, true, nil
}

func readSecret(path, what string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sim: read %s %s: %w", what, path, err)
	}
	if len(b) != secretSize {
		clear(b)
		return nil, fmt.Errorf("%w: %s %s has %d bytes, want %d", ErrBadSecretFile, what, path, len(b), secretSize)
	}
	return b, nil
}

// writeNewFile writes data to path atomically, with mode 0600, and fails
// with an error wrapping fs.ErrExist if path already exists. Readers see
// either no file or the whole file.
func writeNewFile(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// A hard link, unlike a rename, never replaces an existing file.
	if err := os.Link(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
