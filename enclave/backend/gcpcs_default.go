//go:build !gcpcs

package backend

import (
	"fmt"

	"github.com/coterie-mpc/coterie/enclave"
)

const gcpcsAvailable = false

var gcpcsDataFiles []string

func newConfidentialSpace(Config) (enclave.Enclave, error) {
	return nil, fmt.Errorf("%w: confidential-space needs a binary built with -tags gcpcs and run as a Confidential "+
		"Space workload (its sealing needs the launcher's attestation tokens and Cloud KMS); every build verifies "+
		"its tokens (enclave.confidential_space)", ErrUnavailable)
}

// ConfidentialSpaceFiles needs a build with -tags gcpcs.
func ConfidentialSpaceFiles(Config, string, string) (Files, error) {
	return nil, fmt.Errorf("%w: storage.bucket needs a binary built with -tags gcpcs", ErrUnavailable)
}
