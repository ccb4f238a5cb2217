package mpc

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
	"github.com/taurusgroup/multi-party-sig/pkg/math/polynomial"
	"github.com/taurusgroup/multi-party-sig/pkg/party"
	"github.com/taurusgroup/multi-party-sig/protocols/doerner"
	"github.com/taurusgroup/multi-party-sig/protocols/doerner/keygen"
)

// TwoPartyShare is one party's share of a 2-of-2 key in the form that the
// two-party protocol signs with (Doerner, Kondi, Lee and shelat's OT-based
// ECDSA, multi-party-sig's protocols/doerner): an additive share of the
// same secret key as the CMP KeyShare it was set up from, with the same
// public key and chain code, and the oblivious-transfer setup the two
// parties share. It is secret key material.
//
// It lives in memory only (the library cannot encode the OT setup):
// TwoPartySetup makes a fresh one from the CMP shares in a fraction of a
// second, so the CMP share stays the one secret to store. Each setup draws
// fresh additive shares, so two setups of one key share nothing but the
// key. A TwoPartyShare is immutable and safe for concurrent use: signings
// only read it.
type TwoPartyShare struct {
	self, peer PartyID
	// first is set for the party that speaks first, the OT receiver (the
	// lower of the two ids); it holds receiver, the other sender.
	first     bool
	receiver  *doerner.ConfigReceiver
	sender    *doerner.ConfigSender
	publicKey []byte // compressed SEC1
	chainCode []byte
}

// Self returns the party that holds this share.
func (s *TwoPartyShare) Self() PartyID { return s.self }

// Peer returns the other party.
func (s *TwoPartyShare) Peer() PartyID { return s.peer }

// PublicKey returns the key's public key, compressed SEC1: the CMP key's.
func (s *TwoPartyShare) PublicKey() []byte { return slices.Clone(s.publicKey) }

// ChainCode returns the key's BIP-32 chain code: the CMP key's.
func (s *TwoPartyShare) ChainCode() []byte { return slices.Clone(s.chainCode) }

// TwoPartySetup starts the setup of the two-party form of a 2-of-2 CMP key
// between its two parties, p.Parties, with p.Threshold 1. Each party brings
// its CMP share, turned into an additive share of the same secret (its
// Lagrange coefficient times its share); the protocol re-randomises the
// additive shares and runs the OT setup. Its result is this party's *TwoPartyShare, with the CMP key's
// public key and chain code. The CMP shares are unchanged and go on
// working.
func (e *Engine) TwoPartySetup(p Params, share *KeyShare) (*Session[*TwoPartyShare], error) {
	parties, err := p.validate()
	if err != nil {
		return nil, err
	}
	if share == nil {
		return nil, fmt.Errorf("%w: no key share", ErrInvalidParams)
	}
	if p.Self != share.Self() || len(parties) != 2 || p.Threshold != 1 || share.Threshold() != 1 || !slices.Equal(parties, share.Parties()) {
		return nil, fmt.Errorf("%w: the two-party form needs a 2-of-2 key, set up by its two parties with threshold 1", ErrInvalidParams)
	}
	group := curve.Secp256k1{}
	cfg := share.sessionConfig()
	lambda := polynomial.Lagrange(group, toLibIDs(parties))[party.ID(p.Self)]
	additive := group.NewScalar().Set(lambda).Mul(cfg.ECDSA)
	self, peer, first := twoParties(parties, p.Self)
	pub, chain := share.PublicKey(), share.ChainCode()
	s, err := e.startSession(ProtocolTwoPartySetup, p.SessionID, p.Self, parties,
		keygen.StartKeygen(group, first, party.ID(self), party.ID(peer), additive, cfg.PublicPoint(), nil),
		func(res any) (any, error) {
			out := &TwoPartyShare{self: self, peer: peer, first: first, publicKey: pub, chainCode: chain}
			var public curve.Point
			switch c := res.(type) {
			case *doerner.ConfigReceiver:
				out.receiver, public = c, c.Public
				c.ChainKey = slices.Clone(chain)
			case *doerner.ConfigSender:
				out.sender, public = c, c.Public
				c.ChainKey = slices.Clone(chain)
			default:
				return nil, fmt.Errorf("unexpected result %T", res)
			}
			if (out.receiver != nil) != first {
				return nil, errors.New("two-party setup gave the other role's result")
			}
			got, err := public.MarshalBinary()
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(got, pub) {
				return nil, errors.New("two-party setup changed the public key")
			}
			return out, nil
		})
	if err != nil {
		return nil, err
	}
	return &Session[*TwoPartyShare]{s: s}, nil
}

// twoParties returns self, the other party, and whether self speaks first
// (it has the lower id).
func twoParties(parties []PartyID, self PartyID) (PartyID, PartyID, bool) {
	if parties[0] == self {
		return self, parties[1], true
	}
	return self, parties[0], false
}

// TwoPartySign starts a two-party signing of digest (32 bytes) under the
// key at path, between share's two parties, p.Parties with p.Threshold 1.
// It needs no presignature: it is the whole signing, two messages each way.
// Its result is the *Signature, checked with an independent verifier
// against the derived public key; both parties get it. Any number of
// signings may run at once with one share, each with its own session ID.
func (e *Engine) TwoPartySign(p Params, share *TwoPartyShare, digest []byte, path Path) (*Session[*Signature], error) {
	parties, err := p.validate()
	if err != nil {
		return nil, err
	}
	if share == nil {
		return nil, fmt.Errorf("%w: no two-party share", ErrInvalidParams)
	}
	if p.Self != share.self || p.Threshold != 1 || !slices.Equal(parties, sortedPair(share.self, share.peer)) {
		return nil, fmt.Errorf("%w: a two-party signing runs with the share's own two parties and threshold 1", ErrInvalidParams)
	}
	if err := (SignInput{Digest: digest, Path: path}).validate(); err != nil {
		return nil, err
	}
	d, err := e.derive(share.publicKey, share.chainCode, path)
	if err != nil {
		return nil, err
	}
	// The derived key's secret is x + δ: the first party's share takes δ,
	// and both take the derived public key.
	msg := slices.Clone(digest)
	self, peer := party.ID(share.self), party.ID(share.peer)
	var s *session
	if share.first {
		c := share.receiver
		derived := &doerner.ConfigReceiver{Setup: c.Setup, SecretShare: c.Group().NewScalar().Set(c.SecretShare).Add(d.tweak), Public: d.point, ChainKey: d.chainCode}
		s, err = e.startSession(ProtocolTwoPartySign, p.SessionID, p.Self, parties,
			doerner.SignReceiver(derived, self, peer, msg, nil), signatureFinisher(d.publicKey, msg))
	} else {
		c := share.sender
		derived := &doerner.ConfigSender{Setup: c.Setup, SecretShare: c.SecretShare, Public: d.point, ChainKey: d.chainCode}
		s, err = e.startSession(ProtocolTwoPartySign, p.SessionID, p.Self, parties,
			doerner.SignSender(derived, self, peer, msg, nil), signatureFinisher(d.publicKey, msg))
	}
	if err != nil {
		return nil, err
	}
	return &Session[*Signature]{s: s}, nil
}

func sortedPair(a, b PartyID) []PartyID {
	if b < a {
		return []PartyID{b, a}
	}
	return []PartyID{a, b}
}
