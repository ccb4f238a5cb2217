package kmsseal

// The data key file is public: a dataseal.KeyFile under fileMagic, with
// the Cloud KMS key (projects/…/cryptoKeys/K) and its ciphertext.
const (
	fileMagic = "CTGK"
	// FileName is the data key file's name in the data directory.
	FileName = "gcpcs-kms-data-key"

	dataKeySize = 32
)
