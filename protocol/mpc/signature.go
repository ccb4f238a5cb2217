package mpc

import (
	"errors"
	"slices"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	decredecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/taurusgroup/multi-party-sig/pkg/ecdsa"
)

// Signature is an ECDSA signature on secp256k1 in low-S form (s ≤ n/2), as
// Bitcoin and Ethereum require.
type Signature struct {
	// R and S are the big-endian signature values.
	R, S [32]byte
	// RecoveryID recovers the public key from the signature: bit 0 is the
	// parity of the nonce point's y, bit 1 is set when its x was at least
	// the group order (which practically never happens).
	RecoveryID byte
}

// Bytes returns r ‖ s, 64 bytes.
func (s *Signature) Bytes() []byte { return slices.Concat(s.R[:], s.S[:]) }

// Verify reports whether s is a valid signature of the 32-byte digest under
// publicKey (compressed or uncompressed SEC1). It uses decred's secp256k1,
// not the MPC library, so it is an independent check.
func (s *Signature) Verify(publicKey, digest []byte) bool {
	pub, err := secp256k1.ParsePubKey(publicKey)
	if err != nil {
		return false
	}
	var r, ss secp256k1.ModNScalar
	if r.SetBytes(&s.R) != 0 || ss.SetBytes(&s.S) != 0 {
		return false
	}
	return decredecdsa.NewSignature(&r, &ss).Verify(digest, pub)
}

// newSignature converts the library's signature to low-S form.
func newSignature(sig *ecdsa.Signature) (*Signature, error) {
	if sig == nil || sig.R == nil || sig.S == nil {
		return nil, errors.New("empty signature")
	}
	point, err := sig.R.MarshalBinary()
	if err != nil || len(point) != 33 {
		return nil, errors.New("bad nonce point")
	}
	rb, err := sig.R.XScalar().MarshalBinary()
	if err != nil {
		return nil, err
	}
	out := &Signature{RecoveryID: point[0] & 1}
	copy(out.R[:], rb)
	if !slices.Equal(point[1:], rb) {
		out.RecoveryID |= 2
	}
	s := sig.R.Curve().NewScalar().Set(sig.S)
	if s.IsOverHalfOrder() {
		s.Negate()
		out.RecoveryID ^= 1
	}
	sb, err := s.MarshalBinary()
	if err != nil {
		return nil, err
	}
	copy(out.S[:], sb)
	return out, nil
}
