package keyring

import (
	"fmt"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/internal/wire"
)

// The plaintext encoding of a keyring, which only ever goes to a Sealer or
// into an HPKE ciphertext:
//
//	magic "CTKR" | format 1 | current version (4) | count (2) | count × (version (4) | key (32))
//
// Entries are in strictly ascending version order and the current version
// is the highest, so the encoding is canonical.
const (
	krMagic  = "CTKR"
	krFormat = 1
)

// sealedAD is the associated data under which a node seals its keyring, so
// that no other sealed record of the node opens as a keyring.
var sealedAD = []byte("coterie/keyring/v1/sealed")

// marshal returns the plaintext encoding. The caller clears it after use.
func (k *Keyring) marshal() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	vs := k.versionsLocked()
	b := make([]byte, 0, len(krMagic)+1+4+2+len(vs)*(4+KeySize))
	b = append(b, krMagic...)
	b = append(b, krFormat)
	b = wire.AppendU32(b, k.current)
	b = wire.AppendU16(b, uint16(len(vs)))
	for _, v := range vs {
		b = wire.AppendU32(b, v)
		b = append(b, k.keys[v].raw...)
	}
	return b
}

// unmarshal decodes the plaintext encoding, or returns an error wrapping
// ErrMalformedKeyring. It copies the keys out of b.
func unmarshal(b []byte) (*Keyring, error) {
	r := wire.NewReader(b)
	magic := r.Fixed(len(krMagic))
	format := r.U8()
	current := r.U32()
	count := int(r.U16())
	switch {
	case r.Err() != nil:
		return nil, fmt.Errorf("%w: %w", ErrMalformedKeyring, r.Err())
	case string(magic) != krMagic:
		return nil, fmt.Errorf("%w: bad magic", ErrMalformedKeyring)
	case format != krFormat:
		return nil, fmt.Errorf("%w: unsupported format %d", ErrMalformedKeyring, format)
	case count == 0:
		return nil, fmt.Errorf("%w: no keys", ErrMalformedKeyring)
	case r.Len() != count*(4+KeySize):
		return nil, fmt.Errorf("%w: %d bytes of entries for %d keys", ErrMalformedKeyring, r.Len(), count)
	}
	k := &Keyring{current: current, keys: make(map[uint32]*dataKey, count)}
	var prev uint32
	for i := range count {
		v := r.U32()
		raw := append([]byte(nil), r.Fixed(KeySize)...)
		if v <= prev {
			return nil, fmt.Errorf("%w: entry %d: version %d does not follow %d", ErrMalformedKeyring, i, v, prev)
		}
		prev = v
		dk, err := newDataKey(raw)
		if err != nil {
			return nil, err
		}
		k.keys[v] = dk
	}
	if prev != current {
		return nil, fmt.Errorf("%w: current version %d is not the highest, %d", ErrMalformedKeyring, current, prev)
	}
	return k, nil
}

// MarshalSealed returns the keyring sealed by s: what a node writes to its
// store. Only s's enclave, under s's key policy, can Open it.
func (k *Keyring) MarshalSealed(s enclave.Sealer) ([]byte, error) {
	plain := k.marshal()
	defer clear(plain)
	sealed, err := s.Seal(plain, sealedAD)
	if err != nil {
		return nil, fmt.Errorf("keyring: seal: %w", err)
	}
	return sealed, nil
}

// Open unseals a keyring that MarshalSealed sealed with the same enclave.
// Errors wrap the Sealer's (enclave.ErrForeignEnclave, enclave.ErrTampered,
// enclave.ErrWrongAssociatedData, ...) or ErrMalformedKeyring.
func Open(s enclave.Sealer, sealed []byte) (*Keyring, error) {
	plain, err := s.Unseal(sealed, sealedAD)
	if err != nil {
		return nil, fmt.Errorf("keyring: unseal: %w", err)
	}
	defer clear(plain)
	return unmarshal(plain)
}
