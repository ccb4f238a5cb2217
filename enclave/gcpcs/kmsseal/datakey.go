package kmsseal

import (
	"fmt"

	"github.com/coterie-mpc/coterie/enclave/internal/wire"
)

// The data key file is public:
//
//	magic "CTGK" | version 1 | check (32) | key name (16-bit length) | ciphertext (32-bit length)
//
// The key name is the Cloud KMS key (projects/…/cryptoKeys/K) and the
// ciphertext is its encryption of the data key. check is a one-way
// derivation of the data key, so that Open can tell the right data key
// from a wrong one without keeping the key.
const (
	fileMagic   = "CTGK"
	fileVersion = 1
	// FileName is the data key file's name in the data directory.
	FileName = "gcpcs-kms-data-key"

	checkSize     = 32
	maxKeyName    = 1024 // resource names are far shorter
	maxCiphertext = 4096 // Cloud KMS ciphertexts of 32 bytes are about 100
	dataKeySize   = 32
)

// dataKeyFile is the decoded data key file.
type dataKeyFile struct {
	check      []byte
	keyName    string
	ciphertext []byte
}

func (f dataKeyFile) encode() []byte {
	b := append([]byte(fileMagic), fileVersion)
	b = append(b, f.check...)
	b = wire.AppendBytes16(b, []byte(f.keyName))
	return wire.AppendBytes32(b, f.ciphertext)
}

// parseDataKeyFile decodes a data key file, or returns an error wrapping
// ErrBadDataKeyFile.
func parseDataKeyFile(b []byte) (dataKeyFile, error) {
	r := wire.NewReader(b)
	magic, version := r.Fixed(len(fileMagic)), r.U8()
	f := dataKeyFile{check: r.Fixed(checkSize), keyName: string(r.Bytes16(maxKeyName)), ciphertext: r.Bytes32(maxCiphertext)}
	err := r.Done()
	switch {
	case err != nil:
		return dataKeyFile{}, fmt.Errorf("%w: %v", ErrBadDataKeyFile, err)
	case string(magic) != fileMagic || version != fileVersion:
		return dataKeyFile{}, fmt.Errorf("%w: bad magic or version", ErrBadDataKeyFile)
	case f.keyName == "" || len(f.ciphertext) == 0:
		return dataKeyFile{}, fmt.Errorf("%w: no key name or ciphertext", ErrBadDataKeyFile)
	}
	f.check = append([]byte(nil), f.check...)
	f.ciphertext = append([]byte(nil), f.ciphertext...)
	return f, nil
}
