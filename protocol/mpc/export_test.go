package mpc

import (
	"crypto/rand"
	"io"
	"slices"

	"github.com/taurusgroup/multi-party-sig/pkg/ecdsa"
	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
	"github.com/taurusgroup/multi-party-sig/pkg/math/polynomial"
	"github.com/taurusgroup/multi-party-sig/pkg/math/sample"
	"github.com/taurusgroup/multi-party-sig/pkg/party"
	"github.com/taurusgroup/multi-party-sig/protocols/cmp"
)

// LibraryConfig exposes a share's library config to the benchmarks that
// call the library directly.
func LibraryConfig(k *KeyShare) *cmp.Config { return k.cfg }

// DealtPresignatures makes n presignatures for the signers' key by dealing
// them from the secret key, which it reconstructs from the shares. Only
// benchmarks of the online round use it, to have many presignatures of a
// test key without running presign n times; tests of presign itself run the
// protocol.
func DealtPresignatures(shares map[PartyID]*KeyShare, signers []PartyID, n int) []map[PartyID]*Presignature {
	group := curve.Secp256k1{}
	signers = slices.Sorted(slices.Values(signers))
	ids := toLibIDs(signers)
	lagrange := polynomial.Lagrange(group, ids)
	x := group.NewScalar()
	for _, id := range ids {
		x.Add(group.NewScalar().Set(lagrange[id]).Mul(shares[PartyID(id)].cfg.ECDSA))
	}
	any := shares[signers[0]]
	out := make([]map[PartyID]*Presignature, 0, n)
	for range n {
		k := sample.ScalarUnit(rand.Reader, group)
		R := group.NewScalar().Set(k).Invert().ActOnBase()
		chi := group.NewScalar().Set(x).Mul(k)
		ks, chis := dealShares(group, k, len(ids)), dealShares(group, chi, len(ids))
		rbar := map[party.ID]curve.Point{}
		s := map[party.ID]curve.Point{}
		for i, id := range ids {
			rbar[id] = ks[i].Act(R)
			s[id] = chis[i].Act(R)
		}
		pid := make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, pid); err != nil {
			panic(err)
		}
		set := map[PartyID]*Presignature{}
		for i, id := range ids {
			p := &Presignature{
				publicKey: any.PublicKey(), epoch: any.Epoch(), self: PartyID(id), signers: signers,
				pre: &ecdsa.PreSignature{ID: pid, R: R, RBar: party.NewPointMap(rbar), S: party.NewPointMap(s), KShare: ks[i], ChiShare: chis[i]},
			}
			copy(p.id[:], pid)
			set[PartyID(id)] = p
		}
		out = append(out, set)
	}
	return out
}

func dealShares(group curve.Curve, secret curve.Scalar, n int) []curve.Scalar {
	out := make([]curve.Scalar, n)
	sum := group.NewScalar()
	for i := 1; i < n; i++ {
		out[i] = sample.ScalarUnit(rand.Reader, group)
		sum.Add(out[i])
	}
	out[0] = group.NewScalar().Set(secret).Sub(sum)
	return out
}

// DeriveCached derives through the engine's derivation cache and returns the
// public key and the tweak.
func (e *Engine) DeriveCached(masterPub, chainCode []byte, path Path) (pub, tweak []byte, err error) {
	d, err := e.derive(masterPub, chainCode, path)
	if err != nil {
		return nil, nil, err
	}
	tweak, err = d.tweak.MarshalBinary()
	return d.publicKey, tweak, err
}

// DerivationCacheLen returns the number of cached derivations.
func (e *Engine) DerivationCacheLen() int {
	e.derivations.mu.Lock()
	defer e.derivations.mu.Unlock()
	return len(e.derivations.entries)
}

// DerivationCacheSize is the cache's bound.
const DerivationCacheSize = derivationCacheSize

// PresignatureNonce returns presignature p's nonce R, compressed.
func PresignatureNonce(p *Presignature) ([]byte, error) { return p.pre.R.MarshalBinary() }

// RerandomizedNonce returns the nonce R' = ρ·R that PresignOnline signs
// with when p signs digest under share's key at path, compressed.
func RerandomizedNonce(p *Presignature, share *KeyShare, path Path, digest []byte) ([]byte, error) {
	lib := p.sessionCopy()
	rho, err := rerandomizer(lib, share.publicKey, share.cfg.ChainKey, path, digest)
	if err != nil {
		return nil, err
	}
	rerandomize(lib, rho)
	return lib.R.MarshalBinary()
}
