//go:build ego

package backend

import (
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/sgx"
)

const sgxAvailable = true

func newSGX(cfg Config) (enclave.Enclave, error) {
	s := sgx.DefaultConfig()
	s.KeyPolicy = cfg.KeyPolicy
	s.AllowDebug = cfg.AllowDebug
	s.Logger = cfg.Logger
	return sgx.New(s)
}
