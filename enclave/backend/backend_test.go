package backend

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/enclavetest"
	"github.com/coterie-mpc/coterie/enclave/nitro"
	"github.com/coterie-mpc/coterie/enclave/nitro/nitrotest"
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

// TestNewVerifiesNitro: a sim node's enclave verifies Nitro evidence too,
// against the roots it is given, and still its own kind's.
func TestNewVerifiesNitro(t *testing.T) {
	now := time.Now()
	pki := nitrotest.NewPKI(t, now)
	cfg := testConfig(t)
	cfg.NitroRoots, cfg.Clock = pki.Roots(), clock.NewFake(now.Add(time.Minute))
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := &nitrotest.Attester{T: t, PKI: pki, PCRs: nitrotest.PCRs(0xa0), Now: func() time.Time { return now }}
	ev, err := a.Evidence(context.Background(), []byte("report"))
	if err != nil {
		t.Fatal(err)
	}
	p := enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindNitro, Measurement: nitrotest.PCR(0xa0)}}}
	if id, err := e.Verify(context.Background(), ev, p); err != nil || id.Kind != enclave.KindNitro {
		t.Fatalf("Verify(nitro evidence) = %s, %v", id, err)
	}
	p.Allow[0].Measurement = nitrotest.PCR(0xbb)
	if _, err := e.Verify(context.Background(), ev, p); !errors.Is(err, nitro.ErrPCRNotAllowed) {
		t.Fatalf("Verify(nitro evidence, other PCR0) = %v, want ErrPCRNotAllowed", err)
	}
	self := e.Self()
	own, err := e.Evidence(context.Background(), []byte("report"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Verify(context.Background(), own, enclave.Policy{Allow: []enclave.Rule{{Kind: self.Kind, Measurement: self.Measurement}}}); err != nil {
		t.Fatalf("Verify(own evidence) = %v", err)
	}
	if _, ok := enclave.Underlying(e).(*sim.Enclave); !ok {
		t.Fatalf("Underlying = %T, want the sim backend", enclave.Underlying(e))
	}
}
