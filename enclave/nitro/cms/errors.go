package cms

import "errors"

// Refusals of Open. No error holds key material or plaintext.
var (
	// ErrMalformed is returned for an envelope that is not a BER
	// ContentInfo holding an EnvelopedData of the shape KMS sends.
	ErrMalformed = errors.New("cms: malformed CiphertextForRecipient envelope")

	// ErrUnsupported is returned for a well-formed envelope whose key
	// transport or content encryption is not RSAES-OAEP with SHA-256 and
	// AES-256-CBC.
	ErrUnsupported = errors.New("cms: envelope uses an unsupported algorithm")

	// ErrDecrypt is returned when the wrapped key does not unwrap with the
	// given private key, or the content does not decrypt to correctly
	// padded plaintext: the envelope was altered, or is for another key.
	ErrDecrypt = errors.New("cms: envelope does not decrypt with this key")
)
