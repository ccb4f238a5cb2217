package kmsseal

import (
	"errors"

	"github.com/coterie-mpc/coterie/enclave/internal/dataseal"
)

// Errors of Open. None holds a token or key material.
var (
	// ErrNoDataKey is returned when the data key file does not exist and
	// Config.Create is not set: a node that has sealed before lost its
	// file, or this is not its data directory.
	ErrNoDataKey = errors.New("kmsseal: no Cloud KMS data key file")

	// ErrBadDataKeyFile is returned when the data key file does not parse.
	ErrBadDataKeyFile = dataseal.ErrBadKeyFile

	// ErrOtherKey is returned when the data key file was written under
	// another Cloud KMS key than Config.KeyName.
	ErrOtherKey = dataseal.ErrOtherKey

	// ErrKeyRefused is returned when STS refuses the attestation token
	// (for example, the provider's attribute condition does not admit the
	// image digest) or Cloud KMS refuses the call (for example, the
	// federated principal has no role on the key).
	ErrKeyRefused = errors.New("kmsseal: Google Cloud refused the data key")

	// ErrBadResponse is returned for an answer of STS or Cloud KMS that
	// does not parse, or whose CRC32C checksums do not match.
	ErrBadResponse = errors.New("kmsseal: malformed answer from Google Cloud")

	// ErrWrongDataKey is returned when the data key Cloud KMS released is
	// not the one the data key file was written for.
	ErrWrongDataKey = errors.New("kmsseal: the released data key does not match the data key file")
)
