package enclave

import (
	"crypto/sha256"
	"fmt"

	"github.com/coterie-mpc/coterie/enclave/internal/wire"
)

// Every backend frames its sealed blobs with the same header, so that a
// node can tell "another machine sealed this" or "this belongs to another
// record" from plain tampering before it tries the key:
//
//	magic "CTSB" | version 1 | kind | key policy | machine (16) | binding (16) | ad hash (16) | payload
//
// The header is public and the backend authenticates it with the payload
// (it is part of the AEAD's associated data), so editing it makes Unseal
// fail. The payload is the backend's own ciphertext.
const (
	sealedMagic   = "CTSB"
	sealedVersion = 1

	// SealedHeaderSize is the length of the header in front of every
	// sealed blob.
	SealedHeaderSize = len(sealedMagic) + 3 + 3*IDSize
)

// IDSize is the length of the public identifiers in a sealed header.
const IDSize = 16

// ID is a public 16-byte identifier: a truncated SHA-256 of non-secret
// values, or of a one-way derivation from secret ones.
type ID [IDSize]byte

// HashID returns a domain-separated ID over parts. Each part is length
// prefixed, so different splits of the same bytes give different IDs.
func HashID(domain string, parts ...[]byte) ID {
	h := sha256.New()
	h.Write(wire.AppendBytes16(nil, []byte(domain)))
	for _, p := range parts {
		h.Write(wire.AppendBytes32(nil, p))
	}
	var id ID
	copy(id[:], h.Sum(nil))
	return id
}

// SealedHeader is the public header of a sealed blob.
type SealedHeader struct {
	Kind   Kind
	Policy KeyPolicy
	// Machine identifies the sealing root of the machine that sealed.
	Machine ID
	// Binding identifies what the key policy bound the key to: the code
	// under KeyPolicyCode, the signer and product under KeyPolicyProduct.
	Binding ID
	// ADHash identifies the associated data.
	ADHash ID
}

// Append appends the encoded header to b.
func (h SealedHeader) Append(b []byte) []byte {
	b = append(b, sealedMagic...)
	b = append(b, sealedVersion, byte(h.Kind), byte(h.Policy))
	b = append(b, h.Machine[:]...)
	b = append(b, h.Binding[:]...)
	return append(b, h.ADHash[:]...)
}

// ParseSealed splits a sealed blob into its header, the header's encoding
// (which backends authenticate) and the backend's payload, which is never
// empty. It returns an error wrapping ErrMalformedBlob for anything that is
// not a well-formed blob. The returned slices alias blob.
func ParseSealed(blob []byte) (h SealedHeader, header, payload []byte, err error) {
	r := wire.NewReader(blob)
	magic := r.Fixed(len(sealedMagic))
	version := r.U8()
	h.Kind = Kind(r.U8())
	h.Policy = KeyPolicy(r.U8())
	copy(h.Machine[:], r.Fixed(IDSize))
	copy(h.Binding[:], r.Fixed(IDSize))
	copy(h.ADHash[:], r.Fixed(IDSize))
	switch {
	case r.Err() != nil:
		return SealedHeader{}, nil, nil, fmt.Errorf("%w: %d bytes is shorter than the header", ErrMalformedBlob, len(blob))
	case string(magic) != sealedMagic:
		return SealedHeader{}, nil, nil, fmt.Errorf("%w: bad magic", ErrMalformedBlob)
	case version != sealedVersion:
		return SealedHeader{}, nil, nil, fmt.Errorf("%w: unsupported version %d", ErrMalformedBlob, version)
	case !h.Kind.Valid():
		return SealedHeader{}, nil, nil, fmt.Errorf("%w: unknown enclave kind %d", ErrMalformedBlob, uint8(h.Kind))
	case !h.Policy.Valid():
		return SealedHeader{}, nil, nil, fmt.Errorf("%w: unknown key policy %d", ErrMalformedBlob, uint8(h.Policy))
	case r.Len() == 0:
		return SealedHeader{}, nil, nil, fmt.Errorf("%w: no payload", ErrMalformedBlob)
	}
	return h, blob[:SealedHeaderSize:SealedHeaderSize], r.Rest(), nil
}

// HashAD returns the ID of associated data ad.
func HashAD(ad []byte) ID { return HashID("coterie/enclave/sealed-ad/v1", ad) }

// SealScope describes an unsealing enclave: its kind, its machine, and what
// each key policy binds to on it. Backends build one when they start, use
// Header to frame what they seal and Check to sort out blobs that are not
// theirs before trying a key.
type SealScope struct {
	Kind           Kind
	Machine        ID
	CodeBinding    ID
	ProductBinding ID
}

// Header returns the header for a blob sealed under policy p with
// associated data ad.
func (s SealScope) Header(p KeyPolicy, ad []byte) SealedHeader {
	return SealedHeader{Kind: s.Kind, Policy: p, Machine: s.Machine, Binding: s.binding(p), ADHash: HashAD(ad)}
}

func (s SealScope) binding(p KeyPolicy) ID {
	if p == KeyPolicyCode {
		return s.CodeBinding
	}
	return s.ProductBinding
}

// Check returns nil if this enclave can unseal a blob with header h and
// associated data ad, or an error wrapping ErrForeignEnclave, ErrOtherBuild
// or ErrWrongAssociatedData. A nil result does not mean the blob is
// authentic; only the backend's AEAD can say that.
func (s SealScope) Check(h SealedHeader, ad []byte) error {
	switch {
	case h.Kind != s.Kind:
		return fmt.Errorf("%w (sealed by a %s enclave, this is %s)", ErrForeignEnclave, h.Kind, s.Kind)
	case h.Machine != s.Machine:
		return ErrForeignEnclave
	case h.Binding != s.binding(h.Policy):
		return fmt.Errorf("%w (key policy %s)", ErrOtherBuild, h.Policy)
	case h.ADHash != HashAD(ad):
		return ErrWrongAssociatedData
	}
	return nil
}
