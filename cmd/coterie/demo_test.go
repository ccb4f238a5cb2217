package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/node"
)

// TestDemo runs `coterie demo --requests 6` as a real process (the binary
// is built without the race detector, so its MPC runs at full speed): a
// three-node cluster of `node run` processes, one of them killed and
// restarted mid-signing. It checks the exit status, the summary, the
// progress lines and the last line, and that no process outlives it.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs key generation and presigning")
	}
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "demo")
	killLeftovers(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "--requests", "6", "--dir", dir)
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
	// Six transactions: the RETRY-first one and three more allowed, one
	// over the limit, one to an unknown address; eight config changes,
	// ADD_USER rejected.
	got := res
	got.Killed, got.FailedOver, got.FailoverMS, got.FailoverP50MS = "", 0, nil, nil
	want := demoResult{Submitted: 14, Signed: 4, Approved: 7, Rejected: 3, Failed: 0, Verified: 11, Nodes: 3}
	if got != want {
		t.Fatalf("result %+v, want %+v\n%s", res, want, stdout.String())
	}
	if res.Killed != "n1" && res.Killed != "n2" && res.Killed != "n3" {
		t.Errorf("killed %q, want a node", res.Killed)
	}
	progress := stderr.String()
	for _, s := range []string{"n1 bootstrapped the cluster", "n2 joined with a join token", "n3 joined with a join token",
		"paired API user", "killed " + res.Killed, "restarting " + res.Killed, res.Killed + " caught up"} {
		if !strings.Contains(progress, s) {
			t.Errorf("progress lacks %q:\n%s", s, progress)
		}
	}
	if res.FailedOver > 0 {
		if res.FailoverMS == nil || res.FailoverP50MS == nil || *res.FailoverP50MS <= 0 || *res.FailoverP50MS > *res.FailoverMS ||
			*res.FailoverMS > (30*time.Second).Milliseconds() {
			t.Errorf("failover figures %v, %v for %d requests", res.FailoverMS, res.FailoverP50MS, res.FailedOver)
		}
		if !strings.Contains(progress, "taken over by") && !strings.Contains(progress, "by another node") {
			t.Errorf("progress shows no takeover:\n%s", progress)
		}
	} else {
		t.Logf("%s had nothing to take over when it was killed: the failover figures are null", res.Killed)
		if res.FailoverMS != nil || res.FailoverP50MS != nil {
			t.Errorf("failover figures %v, %v without a request taken over", res.FailoverMS, res.FailoverP50MS)
		}
	}
	if !strings.Contains(stdout.String(), "answered RETRY once") || !strings.Contains(stdout.String(), "each with its own presignature") {
		t.Errorf("summary incomplete:\n%s", stdout.String())
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		if b, err := os.ReadFile(filepath.Join(dir, id+".log")); err != nil || !bytes.Contains(b, []byte("node ready")) {
			t.Errorf("%s.log: %v, no \"node ready\" record", id, err)
		}
	}
	if left := processesIn(t, dir); len(left) != 0 {
		t.Errorf("processes left running: %v", left)
	}
}

// TestDemoStopsItsNodes interrupts the demo once its cluster runs, with
// Ctrl-C (SIGINT, which it handles by stopping its nodes) and with SIGKILL
// (which it cannot handle: the kernel kills its nodes), and checks that
// no node process outlives it.
func TestDemoStopsItsNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	bin := buildBinary(t)
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		// gone is how long the nodes may take to go once the demo has
		// exited: none for Ctrl-C, whose handler waits for them.
		gone time.Duration
	}{
		{"interrupt", syscall.SIGINT, 0},
		{"kill", syscall.SIGKILL, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "demo")
			killLeftovers(t, dir)
			cmd := exec.Command(bin, "demo", "--dir", dir)
			// The demo runs in its own process group, as at a terminal,
			// so that the signal reaches it alone.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			// The reader owns log until readDone: the pipe ends when the
			// demo exits (its nodes write to their own log files).
			joined, readDone := make(chan struct{}), make(chan struct{})
			var log bytes.Buffer
			go func() {
				defer close(readDone)
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					log.WriteString(sc.Text() + "\n")
					if strings.Contains(sc.Text(), "n3 joined") {
						close(joined)
					}
				}
			}()
			select {
			case <-joined:
			case <-time.After(2 * time.Minute):
				t.Fatalf("the cluster did not form within 2 minutes")
			}
			if n := len(processesIn(t, dir)); n != 4 {
				t.Fatalf("%d processes run in the demo's directory, want the demo and 3 nodes", n)
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-readDone:
			case <-time.After(time.Minute):
				t.Fatalf("the demo did not exit within a minute of %v", tc.sig)
			}
			if err := cmd.Wait(); err == nil {
				t.Fatalf("the demo exited 0 after %v", tc.sig)
			}
			waitFor(t, tc.gone+100*time.Millisecond, "the node processes to go", func() bool {
				return len(processesIn(t, dir)) == 0
			})
			if tc.sig != syscall.SIGINT {
				return
			}
			if !strings.Contains(log.String(), "interrupted; every process it started has stopped") {
				t.Errorf("no word of the interruption:\n%s", log.String())
			}
			// The demo stopped its nodes itself: each drained on SIGTERM.
			for _, id := range []string{"n1", "n2", "n3"} {
				if b, err := os.ReadFile(filepath.Join(dir, id+".log")); err != nil || !bytes.Contains(b, []byte("node "+id+" stopping")) {
					t.Errorf("%s.log: %v, no sign of a stop on SIGTERM:\n%s", id, err, b)
				}
			}
		})
	}
}

// processesIn returns, by process id, the command lines of the processes
// that name dir on theirs: the demo (--dir) and its nodes (--config
// DIR/nN.yaml).
func processesIn(t *testing.T, dir string) map[int]string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("listing processes: %v", err)
	}
	found := map[int]string{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(dir)) {
			continue
		}
		found[pid] = strings.ReplaceAll(string(bytes.TrimRight(b, "\x00")), "\x00", " ")
	}
	return found
}

// killLeftovers kills, at the end of the test, the processes that name dir
// on their command line: those a failing demo left behind.
func killLeftovers(t *testing.T, dir string) {
	t.Cleanup(func() {
		for pid := range processesIn(t, dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// TestDemoClusterConfigs checks the configs the demo writes: node n1
// bootstraps, the others join with their own token file, every address
// differs, and the timing is the demo's.
func TestDemoClusterConfigs(t *testing.T) {
	dir := t.TempDir()
	key, err := callback.GenerateKey(callback.KeyTypeEC)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := callback.MarshalPublicKeyPEM(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	handlerKey := filepath.Join(dir, "handler-public.pem")
	if err := os.WriteFile(handlerKey, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := newDemoCluster("/bin/coterie", dir, 3, "http://127.0.0.1:1", handlerKey)
	if err != nil {
		t.Fatal(err)
	}
	addrs := map[string]string{}
	for i, n := range c.nodes {
		cfg := n.cfg
		if cfg.NodeID != n.id || n.id != []string{"n1", "n2", "n3"}[i] {
			t.Errorf("node %d is %q (config %q)", i, n.id, cfg.NodeID)
		}
		bootstraps := i == 0
		if cfg.Raft.Bootstrap != bootstraps || (cfg.Cluster.JoinTokenFile == "") != bootstraps || cfg.Cluster.JoinTokenFile != n.tokenPath {
			t.Errorf("%s: bootstrap %v, join token file %q (%q)", n.id, cfg.Raft.Bootstrap, cfg.Cluster.JoinTokenFile, n.tokenPath)
		}
		for _, a := range []string{cfg.Raft.Bind, cfg.Admin.Listen} {
			if other, dup := addrs[a]; dup {
				t.Errorf("%s and %s both use %s", other, n.id, a)
			}
			addrs[a] = n.id
		}
		if cfg.OwnerTimeout != time.Second || cfg.Callback.RetryInterval != time.Second || cfg.DataDir != filepath.Join(dir, n.id) {
			t.Errorf("%s: owner_timeout %v, retry_interval %v, data_dir %s", n.id, cfg.OwnerTimeout, cfg.Callback.RetryInterval, cfg.DataDir)
		}
		if n.healthURL() != "http://"+cfg.Admin.Listen+node.PathHealth {
			t.Errorf("%s: health URL %s", n.id, n.healthURL())
		}
	}
}
