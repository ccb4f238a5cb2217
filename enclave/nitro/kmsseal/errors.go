package kmsseal

import (
	"errors"

	"github.com/coterie-mpc/coterie/enclave/internal/dataseal"
)

// Errors of Open. None holds key material.
var (
	// ErrNoDataKey is returned when the data key file does not exist and
	// Config.Create is not set: a node that has sealed before lost its
	// file, or this is not its data directory.
	ErrNoDataKey = errors.New("kmsseal: no KMS data key file")

	// ErrBadDataKeyFile is returned when the data key file does not parse.
	ErrBadDataKeyFile = dataseal.ErrBadKeyFile
	// ErrOtherKey is returned when the data key file names another KMS key
	// than the configured one.
	ErrOtherKey = dataseal.ErrOtherKey

	// ErrKeyRefused is returned when KMS refuses GenerateDataKey or
	// Decrypt, for example because the attestation document's PCRs do not
	// satisfy the key policy.
	ErrKeyRefused = errors.New("kmsseal: KMS refused the data key")

	// ErrPlaintextExposed is returned when KMS answered with a plaintext
	// data key, which the parent instance could read: the Recipient was
	// ignored.
	ErrPlaintextExposed = errors.New("kmsseal: KMS returned the data key in plaintext, outside the enclave")

	// ErrWrongDataKey is returned when the data key KMS released is not
	// the one the data key file was written for: an altered envelope, or
	// a file and a blob of different keys.
	ErrWrongDataKey = errors.New("kmsseal: the released data key does not match the data key file")

	// ErrDebugEnclave is returned in a debug enclave (all-zero PCRs),
	// unless Config.AllowDebug is set: its memory is open to the parent.
	ErrDebugEnclave = errors.New("kmsseal: running in a debug enclave (all-zero PCRs), whose memory the parent can read")

	// ErrUnsignedImage is returned for KeyPolicyProduct in an enclave
	// whose image is not signed (PCR8 is zero): there is no signer to bind
	// to.
	ErrUnsignedImage = errors.New("kmsseal: the product key policy needs a signed enclave image (PCR8)")
)
