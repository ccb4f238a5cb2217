//go:build nitro

package kmsseal

import (
	"fmt"

	"github.com/coterie-mpc/coterie/enclave/internal/dataseal"
)

// The data key file is public: a dataseal.KeyFile under fileMagic, with
// the key ARN and KMS's CiphertextBlob.
const (
	fileMagic = "CTNK"
	// FileName is the data key file's name in the data directory.
	FileName = "nitro-kms-data-key"

	dataKeySize = 32
)

// parseDataKeyFile decodes a data key file, or returns an error wrapping
// ErrBadDataKeyFile.
func parseDataKeyFile(b []byte) (dataseal.KeyFile, error) {
	f, err := dataseal.ParseKeyFile(b, fileMagic)
	if err != nil {
		return dataseal.KeyFile{}, fmt.Errorf("%w: %w", ErrBadDataKeyFile, err)
	}
	return f, nil
}
