package kmsseal

import (
	"fmt"

	"github.com/coterie-mpc/coterie/enclave/internal/wire"
)

// The data key file is public:
//
//	magic "CTNK" | version 1 | check (32) | key ARN (16-bit length) | CiphertextBlob (32-bit length)
//
// check is a one-way derivation of the data key, so that Open can tell
// the right data key from a wrong one without keeping the key.
const (
	fileMagic   = "CTNK"
	fileVersion = 1
	// FileName is the data key file's name in the data directory.
	FileName = "nitro-kms-data-key"

	checkSize   = 32
	maxKeyID    = 2048 // an ARN with an alias is far shorter
	maxBlobSize = 6144 // KMS ciphertext blobs are a few hundred bytes
	dataKeySize = 32
)

// dataKeyFile is the decoded data key file.
type dataKeyFile struct {
	check []byte
	keyID string
	blob  []byte
}

func (f dataKeyFile) encode() []byte {
	b := append([]byte(fileMagic), fileVersion)
	b = append(b, f.check...)
	b = wire.AppendBytes16(b, []byte(f.keyID))
	return wire.AppendBytes32(b, f.blob)
}

// parseDataKeyFile decodes a data key file, or returns an error wrapping
// ErrBadDataKeyFile.
func parseDataKeyFile(b []byte) (dataKeyFile, error) {
	r := wire.NewReader(b)
	magic, version := r.Fixed(len(fileMagic)), r.U8()
	f := dataKeyFile{check: r.Fixed(checkSize), keyID: string(r.Bytes16(maxKeyID)), blob: r.Bytes32(maxBlobSize)}
	err := r.Done()
	switch {
	case err != nil:
		return dataKeyFile{}, fmt.Errorf("%w: %v", ErrBadDataKeyFile, err)
	case string(magic) != fileMagic || version != fileVersion:
		return dataKeyFile{}, fmt.Errorf("%w: bad magic or version", ErrBadDataKeyFile)
	case f.keyID == "" || len(f.blob) == 0:
		return dataKeyFile{}, fmt.Errorf("%w: no key id or ciphertext", ErrBadDataKeyFile)
	}
	f.check = append([]byte(nil), f.check...)
	f.blob = append([]byte(nil), f.blob...)
	return f, nil
}
