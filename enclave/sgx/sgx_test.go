//go:build ego

package sgx

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/edgelesssys/ego/ecrypto"
)

// TestNewRefusesOutsideEnclave runs under the ordinary `go test -tags ego`,
// that is outside SGX, where EGo would seal with an all-zero key. New must
// refuse before anything is sealed.
func TestNewRefusesOutsideEnclave(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	e, err := New(cfg)
	if !errors.Is(err, ErrNotInEnclave) {
		t.Fatalf("New outside an enclave = %v, %v; want ErrNotInEnclave", e, err)
	}
	t.Log(err)
}

// TestEgoTrapIsReal documents why New checks: outside SGX, EGo's sealing
// "succeeds", under a key anyone can compute.
func TestEgoTrapIsReal(t *testing.T) {
	blob, err := ecrypto.SealWithProductKey256([]byte("secret"), nil)
	if err != nil {
		t.Skipf("EGo refused to seal outside an enclave (%v); the trap is closed in this EGo version", err)
	}
	// The blob opens with nothing but public inputs: the key info is in
	// the blob and the key is zero.
	plain, err := ecrypto.Unseal256(blob, nil)
	if err != nil || string(plain) != "secret" {
		t.Fatalf("Unseal256 = %q, %v", plain, err)
	}
}
