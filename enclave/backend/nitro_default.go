//go:build !nitro

package backend

import (
	"fmt"

	"github.com/coterie-mpc/coterie/enclave"
)

const nitroAvailable = false

var nitroDataFiles []string

func newNitro(Config) (enclave.Enclave, error) {
	return nil, fmt.Errorf("%w: nitro needs a binary built with -tags nitro and run inside a Nitro enclave (its "+
		"sealing needs the NSM and AWS KMS); every build verifies Nitro evidence", ErrUnavailable)
}
