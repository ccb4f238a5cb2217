package synthetic

import (
	"fmt"
	"io"
	"slices"

	"github.com/coterie-mpc/coterie/protocol/mpc/internal/wire"
	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
	"github.com/taurusgroup/multi-party-sig/pkg/math/sample"
)

// Presignature returns, for each signer, the encoded record of its share of
// one fresh presignature for a fresh random key. signers must be valid,
// distinct party IDs.
func Presignature(rand io.Reader, signers []string) (map[string][]byte, error) {
	group := curve.Secp256k1{}
	signers = slices.Clone(signers)
	slices.Sort(signers)
	x := sample.ScalarUnit(rand, group)
	k := sample.ScalarUnit(rand, group)
	kInv := group.NewScalar().Set(k).Invert()
	R := kInv.ActOnBase()
	chi := group.NewScalar().Set(x).Mul(k)
	kShares := split(rand, group, k, len(signers))
	chiShares := split(rand, group, chi, len(signers))

	id := make([]byte, 32)
	if _, err := io.ReadFull(rand, id); err != nil {
		return nil, err
	}
	epoch := make([]byte, 32)
	if _, err := io.ReadFull(rand, epoch); err != nil {
		return nil, err
	}
	pub, err := x.ActOnBase().MarshalBinary()
	if err != nil {
		return nil, err
	}
	rb, err := R.MarshalBinary()
	if err != nil {
		return nil, err
	}
	rbar := make([][]byte, len(signers))
	s := make([][]byte, len(signers))
	for i := range signers {
		// R̄ᵢ = kᵢ·R and Sᵢ = χᵢ·R.
		if rbar[i], err = kShares[i].Act(R).MarshalBinary(); err != nil {
			return nil, err
		}
		if s[i], err = chiShares[i].Act(R).MarshalBinary(); err != nil {
			return nil, err
		}
	}
	out := make(map[string][]byte, len(signers))
	for i, self := range signers {
		kb, err := kShares[i].MarshalBinary()
		if err != nil {
			return nil, err
		}
		cb, err := chiShares[i].MarshalBinary()
		if err != nil {
			return nil, err
		}
		rec := wire.Presignature{
			Version: wire.Version, ID: id, PublicKey: pub, Epoch: epoch, Self: self,
			Signers: signers, R: rb, RBar: rbar, S: s, KShare: kb, ChiShare: cb,
		}
		if out[self], err = wire.Marshal(&rec); err != nil {
			return nil, fmt.Errorf("synthetic: %w", err)
		}
	}
	return out, nil
}

// split returns n non-zero additive shares of secret.
func split(rand io.Reader, group curve.Curve, secret curve.Scalar, n int) []curve.Scalar {
	shares := make([]curve.Scalar, n)
	for {
		sum := group.NewScalar()
		for i := 1; i < n; i++ {
			shares[i] = sample.ScalarUnit(rand, group)
			sum.Add(shares[i])
		}
		shares[0] = group.NewScalar().Set(secret).Sub(sum)
		if !shares[0].IsZero() {
			return shares
		}
	}
}
