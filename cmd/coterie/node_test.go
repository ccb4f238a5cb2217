package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/backend"
	"github.com/coterie-mpc/coterie/enclave/enclavetest"
	"github.com/coterie-mpc/coterie/enclave/sim"
	"github.com/coterie-mpc/coterie/enclave/store"
)

// run runs the coterie command with args and returns its standard output.
// Its standard error (the logs) goes to the test log.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	// Nothing may land in the real user configuration directory.
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	err := cmd.Execute()
	if stderr.Len() > 0 {
		t.Log(stderr.String())
	}
	return stdout.String(), err
}

type testNode struct {
	dir, platformKey string
}

func newTestNode(t *testing.T) testNode {
	return testNode{dir: filepath.Join(t.TempDir(), "n1"), platformKey: filepath.Join(t.TempDir(), "platform.key")}
}

func (n testNode) init(t *testing.T, extra ...string) (string, error) {
	return run(t, append([]string{"node", "init", "--data-dir", n.dir, "--sim-platform-key", n.platformKey}, extra...)...)
}

func (n testNode) status(t *testing.T) (string, error) {
	return run(t, "node", "status", "--data-dir", n.dir, "--sim-platform-key", n.platformKey)
}

func field(t *testing.T, out, name string) string {
	t.Helper()
	for line := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(line, name); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatalf("no %q in output:\n%s", name, out)
	return ""
}

func TestNodeInitThenStatus(t *testing.T) {
	n := newTestNode(t)
	initOut, err := n.init(t)
	if err != nil {
		t.Fatalf("node init: %v", err)
	}
	statusOut, err := n.status(t)
	if err != nil {
		t.Fatalf("node status: %v", err)
	}
	t.Log(statusOut)
	// Status prints what init did, and the sim's platform key.
	if !strings.HasPrefix(statusOut, initOut) {
		t.Errorf("init printed\n%s\nstatus printed\n%s", initOut, statusOut)
	}
	if key, err := hex.DecodeString(field(t, statusOut, "sim platform")); err != nil || len(key) != 32 {
		t.Errorf("sim platform key %x: %v", key, err)
	}
	if got := field(t, statusOut, "enclave"); got != "sim (key policy product)" {
		t.Errorf("enclave = %q", got)
	}
	if got := field(t, statusOut, "keyring"); !strings.HasPrefix(got, "version 1 ") {
		t.Errorf("keyring = %q", got)
	}
	pub, ok := strings.CutPrefix(field(t, statusOut, "identity"), "ed25519:")
	if b, err := hex.DecodeString(pub); !ok || err != nil || len(b) != 32 {
		t.Errorf("identity = %q, want ed25519:<64 hex digits>", pub)
	}

	// Status prints no secret: unseal the identity and keyring here and
	// look for them in the output.
	rec := unsealAll(t, n)
	for i, s := range rec {
		for _, enc := range []string{hex.EncodeToString(s), string(s)} {
			if len(s) >= 16 && strings.Contains(statusOut, enc) {
				t.Errorf("status prints secret %d", i)
			}
		}
	}
}

// unsealAll opens n's store with its enclave and returns the plaintexts the
// enclave unseals: the identity seed and the keyring encoding.
func unsealAll(t *testing.T, n testNode) [][]byte {
	t.Helper()
	cfg := sim.DefaultConfig()
	cfg.DataDir, cfg.PlatformKeyFile, cfg.Logger = n.dir, n.platformKey, enclavetest.Logger(t)
	e, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := enclavetest.NewRecordingSealer(e)
	scfg := store.DefaultConfig()
	scfg.Dir, scfg.Logger = n.dir, enclavetest.Logger(t)
	st, err := store.Open(scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Identity(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Keyring(rec); err != nil {
		t.Fatal(err)
	}
	return rec.Secrets()
}

// TestNodeInitLeavesNoSecretOnDisk scans every byte of the data directory
// after init for the secrets the enclave seals: the identity key's seed and
// the keyring encoding, with its data keys. sim-root itself is in the
// directory in the clear: that is the sim backend's design, and why it
// protects nothing, so it is not scanned for; the keys derived from it are
// checked by the sim package's own test.
func TestNodeInitLeavesNoSecretOnDisk(t *testing.T) {
	n := newTestNode(t)
	if _, err := n.init(t); err != nil {
		t.Fatal(err)
	}
	secrets := unsealAll(t, n)
	if len(secrets) != 2 {
		t.Fatalf("unsealed %d secrets, want 2", len(secrets))
	}
	platform, err := os.ReadFile(n.platformKey)
	if err != nil {
		t.Fatal(err)
	}
	findings, err := enclavetest.ScanDir(n.dir, append(secrets, platform))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Error(f)
	}
}

func TestNodeInitRefusesInitializedDirectory(t *testing.T) {
	n := newTestNode(t)
	if _, err := n.init(t); err != nil {
		t.Fatal(err)
	}
	before := dirBytes(t, n.dir)
	_, err := n.init(t)
	if !errors.Is(err, store.ErrAlreadyInitialized) {
		t.Fatalf("second init = %v, want ErrAlreadyInitialized", err)
	}
	if after := dirBytes(t, n.dir); !bytes.Equal(before, after) {
		t.Fatal("a refused init changed the data directory")
	}
}

func dirBytes(t *testing.T, dir string) []byte {
	t.Helper()
	var all []byte
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		all = append(append(all, e.Name()...), b...)
	}
	return all
}

// TestNodeStatusWithConfig runs status with --config, as the other node
// commands take it: the data directory and the platform key file come from
// the config, and --sim-platform-key overrides the latter.
func TestNodeStatusWithConfig(t *testing.T) {
	n := newTestNode(t)
	initOut, err := n.init(t)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "node.yaml")
	yaml := "node_id: n1\ndata_dir: " + n.dir + "\nenclave:\n  sim_platform_key: " + n.platformKey + "\n"
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "node", "status", "--config", conf)
	if err != nil || !strings.HasPrefix(out, initOut) || !strings.Contains(out, "sim platform    ") {
		t.Fatalf("status --config = %v\n%s\nwant\n%s and the sim platform key", err, out, initOut)
	}
	other := filepath.Join(t.TempDir(), "other.key")
	_, err = run(t, "node", "status", "--config", conf, "--sim-platform-key", other)
	if !errors.Is(err, enclave.ErrForeignEnclave) || !strings.Contains(err.Error(), other) {
		t.Fatalf("status --config --sim-platform-key OTHER = %v", err)
	}
	if _, err := run(t, "node", "status", "--config", conf, "--data-dir", n.dir); err == nil {
		t.Fatal("status took both --config and --data-dir")
	}
}

func TestNodeCommandErrors(t *testing.T) {
	t.Run("status of an empty directory", func(t *testing.T) {
		if _, err := newTestNode(t).status(t); !errors.Is(err, store.ErrNotInitialized) {
			t.Fatalf("status = %v, want ErrNotInitialized", err)
		}
	})
	t.Run("another machine", func(t *testing.T) {
		n := newTestNode(t)
		if _, err := n.init(t); err != nil {
			t.Fatal(err)
		}
		n.platformKey = filepath.Join(t.TempDir(), "other-machine.key")
		_, err := n.status(t)
		if !errors.Is(err, enclave.ErrForeignEnclave) || !strings.Contains(err.Error(), "this data directory belongs to another machine") {
			t.Fatalf("status on another machine = %v, want ErrForeignEnclave", err)
		}
		// For the sim, the machine is its platform key file: the error
		// names the one it tried and how to give another.
		for _, want := range []string{"platform key " + n.platformKey, "--sim-platform-key", "enclave.sim_platform_key"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	})
	t.Run("truncated store", func(t *testing.T) {
		n := newTestNode(t)
		if _, err := n.init(t); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(filepath.Join(n.dir, store.FileName), 5000); err != nil {
			t.Fatal(err)
		}
		if _, err := n.status(t); !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("status of a truncated store = %v, want ErrCorrupt", err)
		}
	})
	t.Run("sgx in the default build", func(t *testing.T) {
		if slices.Contains(backend.Available(), enclave.KindSGX) {
			t.Skip("this build has the sgx backend")
		}
		n := newTestNode(t)
		if _, err := n.init(t, "--enclave", "sgx"); !errors.Is(err, backend.ErrUnavailable) {
			t.Fatalf("init --enclave sgx = %v, want ErrUnavailable", err)
		}
		if _, err := os.Stat(n.dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a refused init created the data directory (%v)", err)
		}
	})
	t.Run("bad flags", func(t *testing.T) {
		n := newTestNode(t)
		if _, err := n.init(t, "--enclave", "tdx"); !errors.Is(err, enclave.ErrUnknownKind) {
			t.Fatalf("init --enclave tdx = %v, want ErrUnknownKind", err)
		}
		if _, err := n.init(t, "--key-policy", "forever"); !errors.Is(err, enclave.ErrUnknownKeyPolicy) {
			t.Fatalf("init --key-policy forever = %v, want ErrUnknownKeyPolicy", err)
		}
		if _, err := run(t, "node", "status"); err == nil || !strings.Contains(err.Error(), "data-dir") {
			t.Fatalf("status without --data-dir = %v", err)
		}
	})
	t.Run("code key policy", func(t *testing.T) {
		n := newTestNode(t)
		if _, err := n.init(t, "--key-policy", "code"); err != nil {
			t.Fatal(err)
		}
		out, err := n.status(t)
		if err != nil || field(t, out, "enclave") != "sim (key policy code)" {
			t.Fatalf("status = %q, %v", out, err)
		}
	})
}

// TestDefaultBuildDoesNotImportEgo checks the import graph: a default build
// of the binary must not link EGo (cgo, SGX-only), while an ego build does,
// which shows the check can see it.
func TestDefaultBuildDoesNotImportEgo(t *testing.T) {
	const ego = "github.com/edgelesssys/ego"
	deps := func(env []string, args ...string) []string {
		t.Helper()
		cmd := exec.Command("go", append([]string{"list", "-deps"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %v: %v", args, err)
		}
		return strings.Fields(string(out))
	}
	for _, p := range deps([]string{"CGO_ENABLED=0"}, ".") {
		if strings.HasPrefix(p, ego) {
			t.Errorf("the default build of cmd/coterie imports %s", p)
		}
	}
	found := false
	for _, p := range deps([]string{"CGO_ENABLED=1"}, "-tags", "ego,ego_mock_eclient", ".") {
		found = found || strings.HasPrefix(p, ego)
	}
	if !found {
		t.Error("an ego build of cmd/coterie does not import ego: the sgx backend is not wired in, or the check is blind")
	}
}

// TestDefaultBuildImportsNoCloudSDK checks the import graph for the cloud
// enclaves: a default build verifies Nitro and Confidential Space evidence
// (their pure-Go verifiers are in it), but links no cloud SDK or device
// library, which only a backend's own build tag may bring in.
func TestDefaultBuildImportsNoCloudSDK(t *testing.T) {
	forbidden := []string{"github.com/aws/", "github.com/hf/nsm", "cloud.google.com/go/", "google.golang.org/api/", "golang.org/x/oauth2"}
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, p := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(p, f) {
				t.Errorf("the default build of cmd/coterie imports %s", p)
			}
		}
	}
	for _, want := range []string{"github.com/coterie-mpc/coterie/enclave/nitro", "github.com/coterie-mpc/coterie/enclave/gcpcs"} {
		if !slices.Contains(deps, want) {
			t.Errorf("the default build does not contain %s: no member could verify that kind (or the check is blind)", want)
		}
	}
}

// TestNitroBuildImportsKMS: a build with the nitro tag links the KMS client
// and the NSM library, which shows the nitro backend is wired in and that
// TestDefaultBuildImportsNoCloudSDK can see them.
func TestNitroBuildImportsKMS(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-tags", "nitro", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, want := range []string{"github.com/aws/aws-sdk-go-v2/service/kms", "github.com/hf/nsm", "github.com/coterie-mpc/coterie/enclave/nitro/kmsseal"} {
		if !slices.Contains(deps, want) {
			t.Errorf("a nitro build of cmd/coterie does not import %s", want)
		}
	}
}

// TestConfidentialSpaceBuildImportsKMSSeal: a build with the gcpcs tag
// links the Cloud KMS sealer, which calls STS and Cloud KMS with net/http
// alone, so it brings no Google SDK either; a default build links neither.
func TestConfidentialSpaceBuildImportsKMSSeal(t *testing.T) {
	const sealer = "github.com/coterie-mpc/coterie/enclave/gcpcs/kmsseal"
	deps := func(args ...string) []string {
		t.Helper()
		cmd := exec.Command("go", append([]string{"list", "-deps"}, args...)...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %v: %v", args, err)
		}
		return strings.Fields(string(out))
	}
	tagged := deps("-tags", "gcpcs", ".")
	if !slices.Contains(tagged, sealer) {
		t.Errorf("a gcpcs build of cmd/coterie does not import %s", sealer)
	}
	for _, p := range tagged {
		for _, f := range []string{"cloud.google.com/go/", "google.golang.org/api/", "golang.org/x/oauth2"} {
			if strings.HasPrefix(p, f) {
				t.Errorf("a gcpcs build of cmd/coterie imports %s", p)
			}
		}
	}
	if slices.Contains(deps("."), sealer) {
		t.Errorf("the default build of cmd/coterie imports %s", sealer)
	}
}
