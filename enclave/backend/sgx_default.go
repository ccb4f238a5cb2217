//go:build !ego

package backend

import (
	"fmt"

	"github.com/coterie-mpc/coterie/enclave"
)

const sgxAvailable = false

func newSGX(Config) (enclave.Enclave, error) {
	return nil, fmt.Errorf("%w: sgx needs a build with -tags ego, run inside an SGX enclave (ego-go build, ego sign, ego run)", ErrUnavailable)
}
