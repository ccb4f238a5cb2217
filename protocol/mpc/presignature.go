package mpc

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/coterie-mpc/coterie/protocol/mpc/internal/wire"
	"github.com/taurusgroup/multi-party-sig/pkg/ecdsa"
	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
	"github.com/taurusgroup/multi-party-sig/pkg/party"
)

// MaxPresignatureSize bounds the encoded size of a presignature that
// UnmarshalPresignature accepts.
const MaxPresignatureSize = 4096

// PresignatureID identifies a presignature. The CMP presign protocol derives
// it jointly (the XOR of every signer's committed random contribution), so
// every signer holds the same ID for its share of the same presignature, and
// no signer can choose it.
type PresignatureID [32]byte

// String returns the ID in lower-case hex.
func (id PresignatureID) String() string { return hex.EncodeToString(id[:]) }

// ParsePresignatureID parses the hex form that String returns.
func ParsePresignatureID(s string) (PresignatureID, error) {
	var id PresignatureID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("%w: presignature ID must be %d hex bytes", ErrInvalidPresignature, len(id))
	}
	copy(id[:], b)
	return id, nil
}

// Presignature is one party's share of a CMP presignature: the output of the
// offline phase, which turns signing into one round. It is secret key
// material: store it only encrypted, and use it at most once (DESIGN
// invariant I1). The only way to sign with it is Engine.PresignOnline, which
// takes it out of a PresignStore first.
//
// A Presignature is immutable and safe for concurrent use.
type Presignature struct {
	id        PresignatureID
	publicKey []byte // compressed SEC1 master public key
	epoch     []byte // the key share's epoch (see KeyShare.Epoch)
	self      PartyID
	signers   []PartyID // sorted
	pre       *ecdsa.PreSignature
}

// ID returns the presignature's ID, the same at every signer.
func (p *Presignature) ID() PresignatureID { return p.id }

// Epoch returns the epoch of the key share it was made with (see
// KeyShare.Epoch).
func (p *Presignature) Epoch() []byte { return slices.Clone(p.epoch) }

// PublicKey returns the compressed SEC1 master public key that the
// presignature signs for.
func (p *Presignature) PublicKey() []byte { return slices.Clone(p.publicKey) }

// Self returns the party that holds this share.
func (p *Presignature) Self() PartyID { return p.self }

// Signers returns the sorted parties that must all take part in the online
// round.
func (p *Presignature) Signers() []PartyID { return slices.Clone(p.signers) }

// MarshalBinary encodes the presignature for encrypted storage. The result
// holds secret shares.
func (p *Presignature) MarshalBinary() ([]byte, error) {
	rec := wire.Presignature{
		Version:   wire.Version,
		ID:        p.id[:],
		PublicKey: p.publicKey,
		Epoch:     p.epoch,
		Self:      string(p.self),
		Signers:   make([]string, len(p.signers)),
	}
	for i, s := range p.signers {
		rec.Signers[i] = string(s)
	}
	var err error
	if rec.R, err = p.pre.R.MarshalBinary(); err != nil {
		return nil, err
	}
	for _, s := range p.signers {
		rb, err := p.pre.RBar.Points[party.ID(s)].MarshalBinary()
		if err != nil {
			return nil, err
		}
		sb, err := p.pre.S.Points[party.ID(s)].MarshalBinary()
		if err != nil {
			return nil, err
		}
		rec.RBar = append(rec.RBar, rb)
		rec.S = append(rec.S, sb)
	}
	if rec.KShare, err = p.pre.KShare.MarshalBinary(); err != nil {
		return nil, err
	}
	if rec.ChiShare, err = p.pre.ChiShare.MarshalBinary(); err != nil {
		return nil, err
	}
	return wire.Marshal(&rec)
}

// UnmarshalPresignature decodes and checks a presignature that
// MarshalBinary encoded. Besides the format, it checks the presignature's
// algebra: the parties' nonce commitments R̄ⱼ sum to the generator, their
// key commitments Sⱼ sum to the public key, and this party's own shares
// match its commitments. Errors wrap ErrInvalidPresignature.
func UnmarshalPresignature(data []byte) (p *Presignature, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%w: decoder panicked", ErrInvalidPresignature)
		}
	}()
	if len(data) > MaxPresignatureSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrInvalidPresignature, len(data), MaxPresignatureSize)
	}
	var rec wire.Presignature
	if err := wire.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPresignature, err)
	}
	p, err = presignatureFromRecord(&rec)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPresignature, err)
	}
	return p, nil
}

func presignatureFromRecord(rec *wire.Presignature) (*Presignature, error) {
	if rec.Version != wire.Version {
		return nil, fmt.Errorf("unsupported version %d", rec.Version)
	}
	p := &Presignature{self: PartyID(rec.Self)}
	if len(rec.ID) != len(p.id) {
		return nil, errors.New("bad ID length")
	}
	copy(p.id[:], rec.ID)
	if p.id == (PresignatureID{}) {
		return nil, errors.New("zero ID")
	}
	pub, err := decodePoint(rec.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("public key: %v", err)
	}
	p.publicKey = slices.Clone(rec.PublicKey)
	if len(rec.Epoch) != 32 {
		return nil, errors.New("bad epoch length")
	}
	p.epoch = slices.Clone(rec.Epoch)
	if err := p.self.Validate(); err != nil {
		return nil, err
	}
	signers := make([]PartyID, len(rec.Signers))
	for i, s := range rec.Signers {
		signers[i] = PartyID(s)
	}
	sorted, err := validateParties(signers)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(sorted, signers) {
		return nil, errors.New("signers not sorted")
	}
	if !slices.Contains(signers, p.self) {
		return nil, errors.New("self is not a signer")
	}
	p.signers = signers
	if len(rec.RBar) != len(signers) || len(rec.S) != len(signers) {
		return nil, errors.New("commitment count differs from signer count")
	}
	R, err := decodePoint(rec.R)
	if err != nil {
		return nil, fmt.Errorf("nonce point: %v", err)
	}
	group := curve.Secp256k1{}
	rbar := make(map[party.ID]curve.Point, len(signers))
	spts := make(map[party.ID]curve.Point, len(signers))
	sumR, sumS := group.NewPoint(), group.NewPoint()
	for i, s := range signers {
		if rbar[party.ID(s)], err = decodePoint(rec.RBar[i]); err != nil {
			return nil, fmt.Errorf("nonce commitment of %q: %v", s, err)
		}
		if spts[party.ID(s)], err = decodePoint(rec.S[i]); err != nil {
			return nil, fmt.Errorf("key commitment of %q: %v", s, err)
		}
		sumR = sumR.Add(rbar[party.ID(s)])
		sumS = sumS.Add(spts[party.ID(s)])
	}
	k, err := decodeScalar(rec.KShare)
	if err != nil {
		return nil, fmt.Errorf("k share: %v", err)
	}
	chi, err := decodeScalar(rec.ChiShare)
	if err != nil {
		return nil, fmt.Errorf("χ share: %v", err)
	}
	// R̄ⱼ = kⱼ·k⁻¹·G sums to G, and Sⱼ = χⱼ·R = χⱼ·k⁻¹·G sums to x·G.
	if !sumR.Equal(group.NewBasePoint()) {
		return nil, errors.New("nonce commitments do not sum to the generator")
	}
	if !sumS.Equal(pub) {
		return nil, errors.New("key commitments do not sum to the public key")
	}
	if !k.Act(R).Equal(rbar[party.ID(p.self)]) || !chi.Act(R).Equal(spts[party.ID(p.self)]) {
		return nil, errors.New("own shares do not match own commitments")
	}
	p.pre = &ecdsa.PreSignature{
		ID:       slices.Clone(rec.ID),
		R:        R,
		RBar:     party.NewPointMap(rbar),
		S:        party.NewPointMap(spts),
		KShare:   k,
		ChiShare: chi,
	}
	if err := p.pre.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// sessionCopy returns a copy of the library presignature with its own
// points and scalars, for the one session that uses it (see
// KeyShare.sessionConfig for why sessions never share points).
func (p *Presignature) sessionCopy() *ecdsa.PreSignature {
	group := curve.Secp256k1{}
	copyMap := func(m *party.PointMap) *party.PointMap {
		pts := make(map[party.ID]curve.Point, len(m.Points))
		for id, pt := range m.Points {
			pts[id] = copyPoint(pt)
		}
		return party.NewPointMap(pts)
	}
	return &ecdsa.PreSignature{
		ID:       slices.Clone(p.pre.ID),
		R:        copyPoint(p.pre.R),
		RBar:     copyMap(p.pre.RBar),
		S:        copyMap(p.pre.S),
		KShare:   group.NewScalar().Set(p.pre.KShare),
		ChiShare: group.NewScalar().Set(p.pre.ChiShare),
	}
}

// newPresignature wraps the library's output for the given key share.
func newPresignature(share *KeyShare, pre *ecdsa.PreSignature) (*Presignature, error) {
	if err := pre.Validate(); err != nil {
		return nil, err
	}
	p := &Presignature{
		publicKey: share.PublicKey(),
		epoch:     share.Epoch(),
		self:      share.Self(),
		signers:   fromLibIDs(pre.SignerIDs()),
		pre:       pre,
	}
	if len(pre.ID) != len(p.id) {
		return nil, errors.New("library presignature ID has the wrong length")
	}
	copy(p.id[:], pre.ID)
	return p, nil
}

// decodePoint decodes a compressed SEC1 secp256k1 point, refusing the
// identity and non-canonical prefixes.
func decodePoint(b []byte) (curve.Point, error) {
	if len(b) != 33 || (b[0] != 2 && b[0] != 3) {
		return nil, errors.New("not a compressed SEC1 point")
	}
	pt := curve.Secp256k1{}.NewPoint()
	if err := pt.UnmarshalBinary(b); err != nil {
		return nil, errors.New("not a point on secp256k1")
	}
	if pt.IsIdentity() {
		return nil, errors.New("identity point")
	}
	return pt, nil
}

// decodeScalar decodes a 32-byte big-endian scalar in [1, n-1].
func decodeScalar(b []byte) (curve.Scalar, error) {
	s := curve.Secp256k1{}.NewScalar()
	if err := s.UnmarshalBinary(b); err != nil {
		return nil, errors.New("not a scalar below the group order")
	}
	if s.IsZero() {
		return nil, errors.New("zero scalar")
	}
	return s, nil
}

// copyPoint returns a new point equal to p (adding p to the identity only
// reads p).
func copyPoint(p curve.Point) curve.Point { return p.Curve().NewPoint().Add(p) }
