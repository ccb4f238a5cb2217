package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `coterie demo --requests 4` as a real process (the binary
// is built without the race detector, so its MPC runs at full speed) and
// checks its exit status, its summary and its last line.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs key generation and presigning")
	}
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "demo")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "--requests", "4", "--dir", dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res demoResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	// Four transactions: the RETRY-first one and two more allowed, one over
	// the limit; eight config changes, ADD_USER rejected.
	want := demoResult{Submitted: 12, Signed: 3, Approved: 7, Rejected: 2, Failed: 0, Verified: 10}
	if res != want {
		t.Fatalf("result %+v, want %+v\n%s", res, want, stdout.String())
	}
	if !strings.Contains(stderr.String(), "paired API user") || !strings.Contains(stdout.String(), "answered RETRY once") {
		t.Fatalf("progress or summary missing:\n%s\n%s", stderr.String(), stdout.String())
	}
}
