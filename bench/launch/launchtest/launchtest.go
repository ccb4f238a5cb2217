package launchtest

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Binary builds cmd/coterie into a temporary directory of tb and returns
// its path. It builds without the race detector, so that the processes'
// MPC runs at full speed.
func Binary(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("launchtest: no caller information")
	}
	src := filepath.Join(filepath.Dir(file), "..", "..", "..", "cmd", "coterie")
	bin := filepath.Join(tb.TempDir(), "coterie")
	if out, err := exec.Command("go", "build", "-o", bin, src).CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
