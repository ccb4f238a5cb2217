package node

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/backend"
)

// The node configs that deploy/ builds into images must be valid in the
// build they go with (`make test` runs these with -tags nitro and gcpcs).

func TestDeployConfigNitro(t *testing.T) {
	checkDeployConfig(t, "../deploy/nitro/node.yaml", enclave.KindNitro)
}

func TestDeployConfigConfidentialSpace(t *testing.T) {
	checkDeployConfig(t, "../deploy/confidential-space/node.yaml", enclave.KindConfidentialSpace)
}

// checkDeployConfig parses the config at path, with its callback handler
// key in a test directory instead of the image's /etc/coterie.
func checkDeployConfig(t *testing.T, path string, kind enclave.Kind) {
	if !slices.Contains(backend.Available(), kind) {
		t.Skipf("%s needs a build with its tag", kind)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeHandlerKey(t, filepath.Join(dir, "handler-public.pem"))
	cfg, err := ParseConfig([]byte(strings.ReplaceAll(string(data), "/etc/coterie/", dir+"/")), dir)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := enclave.ParseKind(cfg.Enclave.Kind); k != kind || cfg.mode() != ModeProduction || !cfg.Raft.NonVoter {
		t.Fatalf("%s: kind %s, mode %s, nonvoter %t", path, cfg.Enclave.Kind, cfg.Mode, cfg.Raft.NonVoter)
	}
	// A joiner whose policy is empty accepts only its own measurement, and
	// every node has its own image; and SGX voters it cannot check.
	if len(cfg.Cluster.Policy) == 0 || !slices.Contains(cfg.Cluster.unverifiableKinds(), enclave.KindSGX) {
		t.Fatalf("%s: a joiner with policy %v and unverifiable kinds %v could join no cluster of SGX voters", path, cfg.Cluster.Policy, cfg.Cluster.UnverifiableJoinKinds)
	}
}
