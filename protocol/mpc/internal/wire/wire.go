package wire

import (
	"bytes"
	"errors"

	"github.com/fxamacker/cbor/v2"
)

// Version is the record version that this package writes and accepts.
const Version = 1

// Presignature is the stored form of one party's presignature share.
type Presignature struct {
	Version   uint     `cbor:"1,keyasint"`
	ID        []byte   `cbor:"2,keyasint"`
	PublicKey []byte   `cbor:"3,keyasint"`
	Epoch     []byte   `cbor:"4,keyasint"`
	Self      string   `cbor:"5,keyasint"`
	Signers   []string `cbor:"6,keyasint"`
	R         []byte   `cbor:"7,keyasint"`
	RBar      [][]byte `cbor:"8,keyasint"`
	S         [][]byte `cbor:"9,keyasint"`
	KShare    []byte   `cbor:"10,keyasint"`
	ChiShare  []byte   `cbor:"11,keyasint"`
}

// KeyShare is the stored form of one party's key share: the library's own
// encoding of its config, wrapped with a version.
type KeyShare struct {
	Version uint   `cbor:"1,keyasint"`
	Config  []byte `cbor:"2,keyasint"`
}

var (
	enc cbor.EncMode
	dec cbor.DecMode
)

func init() {
	var err error
	enc, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err) // static options; cannot fail
	}
	dec, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   8,
		MaxArrayElements:  64,
		MaxMapPairs:       64,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err) // static options; cannot fail
	}
}

// Marshal encodes v canonically.
func Marshal(v any) ([]byte, error) { return enc.Marshal(v) }

// ErrNotCanonical is returned by Unmarshal for data that decodes but is not
// the canonical encoding of what it decodes to (for example, trailing bytes).
var ErrNotCanonical = errors.New("wire: not the canonical encoding")

// Unmarshal decodes data into v, a pointer to a record, strictly: no
// duplicate or unknown keys, no indefinite lengths, no tags, bounded nesting
// and sizes, and only the canonical encoding (so no trailing bytes either).
func Unmarshal(data []byte, v any) error {
	if err := dec.Unmarshal(data, v); err != nil {
		return err
	}
	again, err := enc.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, data) {
		return ErrNotCanonical
	}
	return nil
}
