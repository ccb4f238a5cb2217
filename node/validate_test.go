package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBadConfigCreatesNothing gives New configs that are wrong only in
// what a node used to find out after it had created its data directory,
// bootstrapped raft and made the callback key: each must be refused with
// ErrInvalidConfig, and leave no data directory behind.
func TestBadConfigCreatesNothing(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		edit  func(c *Config)
		wants []string
	}{
		{"handler key file missing", func(c *Config) {
			c.Callback.URL, c.Callback.HandlerPublicKey = "http://127.0.0.1:1", filepath.Join(t.TempDir(), "none.pem")
		}, []string{"callback.handler_public_key"}},
		{"handler key file garbage", func(c *Config) {
			c.Callback.URL, c.Callback.HandlerPublicKey = "http://127.0.0.1:1", garbage
		}, []string{"callback.handler_public_key"}},
		{"ca file garbage", func(c *Config) { c.Callback.CAFile = garbage }, []string{"callback.ca_file"}},
		{"callback timeout too long", func(c *Config) { c.Callback.Timeout = time.Hour }, []string{"timeout 1h0m0s"}},
		{"retry budget too large", func(c *Config) { c.Callback.RetryAttempts = 1 << 20 }, []string{"max attempts"}},
		{"enclave not built in", func(c *Config) { c.Enclave.Kind = "sgx" }, []string{"enclave.kind sgx"}},
		{"admin key file missing", func(c *Config) {
			c.Admin.TLSCert, c.Admin.TLSKey = garbage, filepath.Join(t.TempDir(), "none.pem")
		}, []string{"admin.tls_cert, admin.tls_key"}},
		{"every problem at once", func(c *Config) {
			c.Callback.CAFile, c.Enclave.Kind, c.Admin.TLSKey = garbage, "sgx", garbage
		}, []string{"callback.ca_file", "enclave.kind sgx", "admin.tls_cert and admin.tls_key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			tt.edit(&cfg)
			n, err := New(cfg)
			if err == nil {
				// Before Validate caught these, Start was where they failed.
				err = n.Start(ctxT(t, 30*time.Second))
				_ = n.Close()
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v, want ErrInvalidConfig", err)
			}
			for _, w := range tt.wants {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v does not say %q", err, w)
				}
			}
			if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the data directory exists after a refused config (%v)", err)
			}
		})
	}
}
