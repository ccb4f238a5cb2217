package backend

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/enclavetest"
	"github.com/coterie-mpc/coterie/enclave/sim"
)

func testConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Initialize = true
	cfg.SimPlatformKeyFile = filepath.Join(t.TempDir(), "platform.key")
	cfg.Logger = enclavetest.Logger(t)
	return cfg
}

func TestNewSim(t *testing.T) {
	e, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind() != enclave.KindSim || e.KeyPolicy() != enclave.KeyPolicyProduct {
		t.Fatalf("New = %v %v", e.Kind(), e.KeyPolicy())
	}
}

// TestProductionRefusesSim is the check behind `mode: production`.
func TestProductionRefusesSim(t *testing.T) {
	cfg := testConfig(t)
	cfg.Production = true
	if _, err := New(cfg); !errors.Is(err, sim.ErrProductionMode) {
		t.Fatalf("New(sim, production) = %v, want sim.ErrProductionMode", err)
	}
}

func TestUnavailableKinds(t *testing.T) {
	for _, k := range []enclave.Kind{enclave.KindUnknown, enclave.KindNitro, enclave.KindConfidentialSpace, enclave.KindSGX} {
		if slices.Contains(Available(), k) {
			continue
		}
		cfg := testConfig(t)
		cfg.Kind = k
		if _, err := New(cfg); !errors.Is(err, ErrUnavailable) {
			t.Errorf("New(%s) = %v, want ErrUnavailable", k, err)
		}
	}
	if !slices.Contains(Available(), enclave.KindSim) {
		t.Error("sim is not available")
	}
}
