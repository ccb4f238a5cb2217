package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data and file mode perm: it writes a temporary
// file in the same directory, fsyncs it, renames it over path and fsyncs
// the directory. On failure path is unchanged and no temporary file is
// left behind. Concurrent Writes to one path are safe; the last rename
// wins.
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
