//go:build nitro

package kmsseal

// The data key file is public: a dataseal.KeyFile under fileMagic, with
// the key ARN and KMS's CiphertextBlob.
const (
	fileMagic = "CTNK"
	// FileName is the data key file's name in the data directory.
	FileName = "nitro-kms-data-key"

	dataKeySize = 32
)
