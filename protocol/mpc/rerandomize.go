package mpc

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"

	"github.com/taurusgroup/multi-party-sig/pkg/ecdsa"
	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
)

// rerandomizeDomain separates the hash that re-randomizes a presignature
// from every other hash of the package.
const rerandomizeDomain = "coterie/mpc/presignature-rerandomization/v1"

// rerandomizer returns ρ, the public factor that re-randomizes presignature
// pre for signing digest under the key derived at path from the master key
// masterPub with chainCode: a hash of the presignature (its ID and R), the
// master key and chain code, the path and the digest. Every signer computes
// the same ρ from public values, and no one can know it before the digest
// and the path are fixed, so the signature's nonce R' = ρ·R is one that no
// one could choose in advance (Groth and Shoup, ePrint 2021/1330,
// re-randomized presignatures).
func rerandomizer(pre *ecdsa.PreSignature, masterPub, chainCode []byte, path Path, digest []byte) (curve.Scalar, error) {
	r, err := pre.R.MarshalBinary()
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	field := func(b []byte) {
		_ = binary.Write(h, binary.BigEndian, uint32(len(b)))
		h.Write(b)
	}
	field([]byte(rerandomizeDomain))
	field(pre.ID)
	field(r)
	field(masterPub)
	field(chainCode)
	field(binary.BigEndian.AppendUint32(nil, uint32(len(path))))
	for _, i := range path {
		field(binary.BigEndian.AppendUint32(nil, i))
	}
	field(digest)
	rho := curve.FromHash(pre.Group(), h.Sum(nil))
	if rho.IsZero() {
		return nil, errors.New("re-randomization factor is zero")
	}
	return rho, nil
}

// rerandomize applies ρ to pre, which must be this party's own copy. CMP's
// presignature has R = k⁻¹·G and additive shares kᵢ of k and χᵢ of k·x, and
// a party's signature share is σᵢ = kᵢ·m + r·χᵢ. Multiplying R by ρ and
// dividing kᵢ and χᵢ by ρ gives a presignature for the nonce R' = ρ·R whose
// shares still sum to k' = k/ρ and k'·x. The library checks each share σⱼ
// against RBar[j] = kⱼ·R and S[j] = χⱼ·R, which the change leaves as they
// are (kⱼ/ρ · ρ·R = kⱼ·R), so a bad share is still traced to its sender.
func rerandomize(pre *ecdsa.PreSignature, rho curve.Scalar) {
	inv := pre.Group().NewScalar().Set(rho).Invert()
	pre.R = rho.Act(pre.R)
	pre.KShare = pre.Group().NewScalar().Set(pre.KShare).Mul(inv)
	pre.ChiShare = pre.Group().NewScalar().Set(pre.ChiShare).Mul(inv)
}
