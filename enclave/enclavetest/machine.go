package enclavetest

import (
	"crypto/sha256"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/coterie-mpc/coterie/enclave/sim"
)

// TestMeasurement is the simulated measurement of Machine's enclaves.
var TestMeasurement = func() []byte { m := sha256.Sum256([]byte("coterie test build")); return m[:] }()

// Logger returns a logger that writes to t's log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// Machine is a simulated machine for tests: it has a platform key of its
// own, so two Machines are two machines, and every data directory on one
// Machine attests with the same platform key.
type Machine struct {
	t               testing.TB
	PlatformKeyFile string
}

// NewMachine returns a fresh simulated machine whose platform key lives in
// a temporary directory.
func NewMachine(t testing.TB) *Machine {
	return &Machine{t: t, PlatformKeyFile: filepath.Join(t.TempDir(), "platform.key")}
}

// Config returns the sim configuration of an enclave on m for dataDir:
// KeyPolicyProduct, TestMeasurement, the root created if missing, logs to
// the test.
func (m *Machine) Config(dataDir string) sim.Config {
	cfg := sim.DefaultConfig()
	cfg.DataDir = dataDir
	cfg.CreateRoot = true
	cfg.PlatformKeyFile = m.PlatformKeyFile
	cfg.Measurement = TestMeasurement
	cfg.Logger = Logger(m.t)
	return cfg
}

// Enclave opens the simulated enclave for dataDir on m, after edit (which
// may be nil) has changed its configuration. It fails the test on error.
func (m *Machine) Enclave(dataDir string, edit func(*sim.Config)) *sim.Enclave {
	m.t.Helper()
	cfg := m.Config(dataDir)
	if edit != nil {
		edit(&cfg)
	}
	e, err := sim.New(cfg)
	if err != nil {
		m.t.Fatalf("sim.New: %v", err)
	}
	return e
}
