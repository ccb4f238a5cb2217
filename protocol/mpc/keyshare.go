package mpc

import (
	"errors"
	"fmt"
	"slices"

	"github.com/coterie-mpc/coterie/protocol/mpc/internal/wire"
	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
	"github.com/taurusgroup/multi-party-sig/pkg/party"
	"github.com/taurusgroup/multi-party-sig/protocols/cmp"
	"github.com/taurusgroup/multi-party-sig/protocols/cmp/config"
)

// MaxKeyShareSize bounds the encoded size of a key share that
// UnmarshalKeyShare accepts.
const MaxKeyShareSize = 64 << 10

// KeyShare is one party's share of a threshold ECDSA key on secp256k1, with
// the auxiliary Paillier and Pedersen parameters that CMP signing needs. It
// is secret key material: MarshalBinary's output must only be stored
// encrypted (under the keyring). A KeyShare is immutable and safe for
// concurrent use.
type KeyShare struct {
	cfg       *cmp.Config
	publicKey []byte // compressed SEC1, cached
}

func newKeyShare(cfg *cmp.Config) (*KeyShare, error) {
	if cfg == nil || cfg.Group == nil || cfg.Group.Name() != (curve.Secp256k1{}).Name() {
		return nil, errors.New("config is not on secp256k1")
	}
	if err := PartyID(cfg.ID).Validate(); err != nil {
		return nil, err
	}
	ids := fromLibIDs(cfg.PartyIDs())
	if _, err := validateParties(ids); err != nil {
		return nil, err
	}
	if cfg.Threshold < 0 || cfg.Threshold >= len(ids) {
		return nil, fmt.Errorf("threshold %d invalid for %d parties", cfg.Threshold, len(ids))
	}
	if len(cfg.ChainKey) != 32 || len(cfg.RID) != 32 {
		return nil, errors.New("chain code or RID is not 32 bytes")
	}
	pub := cfg.PublicPoint()
	if pub.IsIdentity() {
		return nil, errors.New("public key is the identity")
	}
	pb, err := pub.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &KeyShare{cfg: cfg, publicKey: pb}, nil
}

// Self returns the party that holds this share.
func (k *KeyShare) Self() PartyID { return PartyID(k.cfg.ID) }

// Parties returns every party of the key, sorted.
func (k *KeyShare) Parties() []PartyID { return fromLibIDs(k.cfg.PartyIDs()) }

// Threshold returns the number of corrupt parties tolerated: any
// Threshold()+1 parties can sign.
func (k *KeyShare) Threshold() int { return k.cfg.Threshold }

// PublicKey returns the master public key in compressed SEC1 form (33 bytes).
func (k *KeyShare) PublicKey() []byte { return slices.Clone(k.publicKey) }

// ChainCode returns the 32-byte BIP-32 chain code of the master key.
//
// Key generation produces it jointly: each party commits to 32 random bytes
// in the first round and opens them only after every commitment is in, and
// the chain code is the XOR of all openings. So every party, including the
// platform's cloud co-signers, ends with the same value, and no party can
// choose or bias it unless all parties collude. Refresh keeps it, so derived
// addresses survive a refresh. Together with PublicKey it is the extended
// public key: not secret, but it links every derived address to the master.
func (k *KeyShare) ChainCode() []byte { return slices.Clone(k.cfg.ChainKey) }

// Epoch returns 32 bytes that identify this generation of shares: keygen and
// every refresh produce a new, jointly random value that all parties share.
// Presignatures record it, so that a presignature made before a refresh is
// refused after it.
func (k *KeyShare) Epoch() []byte { return slices.Clone(k.cfg.RID) }

// MarshalBinary encodes the share for encrypted storage. The result holds
// the secret share and the Paillier secret key.
func (k *KeyShare) MarshalBinary() ([]byte, error) {
	inner, err := k.cfg.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return wire.Marshal(&wire.KeyShare{Version: wire.Version, Config: inner})
}

// UnmarshalKeyShare decodes a share that MarshalBinary encoded. The library
// checks the Paillier primes and the peers' public parameters, so decoding
// takes a few milliseconds. Errors wrap ErrInvalidKeyShare.
func UnmarshalKeyShare(data []byte) (k *KeyShare, err error) {
	defer func() {
		if r := recover(); r != nil {
			k, err = nil, fmt.Errorf("%w: decoder panicked", ErrInvalidKeyShare)
		}
	}()
	if len(data) > MaxKeyShareSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrInvalidKeyShare, len(data), MaxKeyShareSize)
	}
	var rec wire.KeyShare
	if err := wire.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKeyShare, err)
	}
	if rec.Version != wire.Version {
		return nil, fmt.Errorf("%w: unsupported version %d", ErrInvalidKeyShare, rec.Version)
	}
	cfg := cmp.EmptyConfig(curve.Secp256k1{})
	if err := cfg.UnmarshalBinary(rec.Config); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKeyShare, err)
	}
	if k, err = newKeyShare(cfg); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKeyShare, err)
	}
	return k, nil
}

// sessionConfig returns a copy of the share's config for one session. The
// library's point methods Equal, XScalar and XBytes normalize the point in
// place, so a point that two sessions use at once is a data race that can
// corrupt a computation. Every session therefore works on its own copies of
// all curve points and scalars; the Paillier and Pedersen keys, which the
// library only reads, stay shared. The KeyShare itself is never handed to the
// library, so concurrent sessions only ever read it.
func (k *KeyShare) sessionConfig() *cmp.Config {
	c := k.cfg
	public := make(map[party.ID]*config.Public, len(c.Public))
	for id, p := range c.Public {
		public[id] = &config.Public{
			ECDSA:    copyPoint(p.ECDSA),
			ElGamal:  copyPoint(p.ElGamal),
			Paillier: p.Paillier,
			Pedersen: p.Pedersen,
		}
	}
	return &cmp.Config{
		Group:     c.Group,
		ID:        c.ID,
		Threshold: c.Threshold,
		ECDSA:     c.Group.NewScalar().Set(c.ECDSA),
		ElGamal:   c.Group.NewScalar().Set(c.ElGamal),
		Paillier:  c.Paillier,
		RID:       slices.Clone(c.RID),
		ChainKey:  slices.Clone(c.ChainKey),
		Public:    public,
	}
}
