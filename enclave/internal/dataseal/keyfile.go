package dataseal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/coterie-mpc/coterie/enclave/internal/wire"
)

// KeyFile is the public file in which a cloud backend keeps its data key
// as its KMS encrypted it:
//
//	magic (4) | version 1 | check (32) | key name (16-bit length) | ciphertext (32-bit length)
//
// KeyName names the KMS key; Check is Derive of the data key under a label
// of the backend's, so that the backend tells the right data key from a
// wrong one without keeping the key.
type KeyFile struct {
	Check      []byte
	KeyName    string
	Ciphertext []byte
}

// Errors of ParseKeyFile and ReadKeyFile.
var (
	// ErrBadKeyFile: the file does not parse.
	ErrBadKeyFile = errors.New("dataseal: malformed data key file")
	// ErrOtherKey: the file names another KMS key than the configured
	// one. The file lies outside the enclave's trust, so the key it names
	// is never used.
	ErrOtherKey = errors.New("dataseal: the data key file names another KMS key")
)

const keyFileVersion = 1

// The bounds of a KeyFile's parts: key names (an ARN, a resource name) and
// KMS ciphertexts of a 32-byte key are far shorter.
const (
	MaxKeyName    = 2048
	MaxCiphertext = 6144
)

// Encode returns the file's bytes under magic, the backend's 4 bytes.
func (f KeyFile) Encode(magic string) []byte {
	b := append([]byte(magic), keyFileVersion)
	b = append(b, f.Check...)
	b = wire.AppendBytes16(b, []byte(f.KeyName))
	return wire.AppendBytes32(b, f.Ciphertext)
}

// ParseKeyFile decodes a file Encode wrote under magic, or returns an
// error wrapping ErrBadKeyFile.
func ParseKeyFile(b []byte, magic string) (KeyFile, error) {
	r := wire.NewReader(b)
	m, version := r.Fixed(len(magic)), r.U8()
	f := KeyFile{Check: r.Fixed(KeySize), KeyName: string(r.Bytes16(MaxKeyName)), Ciphertext: r.Bytes32(MaxCiphertext)}
	err := r.Done()
	switch {
	case err != nil:
		return KeyFile{}, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	case string(m) != magic || version != keyFileVersion:
		return KeyFile{}, fmt.Errorf("%w: bad magic or version", ErrBadKeyFile)
	case f.KeyName == "" || len(f.Ciphertext) == 0:
		return KeyFile{}, fmt.Errorf("%w: no key name or ciphertext", ErrBadKeyFile)
	}
	f.Check = append([]byte(nil), f.Check...)
	f.Ciphertext = append([]byte(nil), f.Ciphertext...)
	return f, nil
}

// ReadKeyFile reads the data key file at path, written under magic for the
// KMS key keyName; found is false when there is none. Errors wrap
// ErrBadKeyFile or ErrOtherKey, or are the file system's.
func ReadKeyFile(path, magic, keyName string) (f KeyFile, found bool, err error) {
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return KeyFile{}, false, nil
	case err != nil:
		return KeyFile{}, false, err
	}
	if f, err = ParseKeyFile(raw, magic); err != nil {
		return KeyFile{}, false, err
	}
	if f.KeyName != keyName {
		return KeyFile{}, false, fmt.Errorf("%w: the file names %q, the config %q", ErrOtherKey, f.KeyName, keyName)
	}
	return f, true, nil
}
