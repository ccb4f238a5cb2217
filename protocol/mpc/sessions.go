package mpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/taurusgroup/multi-party-sig/pkg/ecdsa"
	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
	"github.com/taurusgroup/multi-party-sig/pkg/party"
	"github.com/taurusgroup/multi-party-sig/protocols/cmp"
)

// Params are what every session is created with. Every party of a session
// must use the same SessionID, Parties and Threshold.
type Params struct {
	// SessionID identifies the session (1 to 64 bytes). It must be unique per
	// run: the transcript, and so every proof, is bound to it.
	SessionID []byte
	// Self is the party running this session.
	Self PartyID
	// Parties are all the parties of this session, Self included: every key
	// holder for keygen and refresh, the signers for presign and sign.
	Parties []PartyID
	// Threshold is the number of corrupt parties the key tolerates; any
	// Threshold+1 parties can sign.
	Threshold int
}

// validate checks p on its own and returns the parties sorted.
func (p Params) validate() ([]PartyID, error) {
	if n := len(p.SessionID); n == 0 || n > MaxSessionIDLen {
		return nil, fmt.Errorf("%w: session ID of %d bytes, want 1 to %d", ErrInvalidParams, n, MaxSessionIDLen)
	}
	parties, err := validateParties(p.Parties)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidParams, err)
	}
	if len(parties) < 2 {
		return nil, fmt.Errorf("%w: a session needs at least 2 parties", ErrInvalidParams)
	}
	if !slices.Contains(parties, p.Self) {
		return nil, fmt.Errorf("%w: self %q is not among the parties", ErrInvalidParams, p.Self)
	}
	if p.Threshold < 0 || p.Threshold >= len(parties) {
		return nil, fmt.Errorf("%w: threshold %d invalid for %d parties", ErrInvalidParams, p.Threshold, len(parties))
	}
	return parties, nil
}

// validateSigners checks p for a signing session with share: the signers
// are at least Threshold+1 of the key's parties, and p agrees with share.
func (p Params) validateSigners(share *KeyShare) ([]PartyID, error) {
	if share == nil {
		return nil, fmt.Errorf("%w: no key share", ErrInvalidParams)
	}
	if n := len(p.SessionID); n == 0 || n > MaxSessionIDLen {
		return nil, fmt.Errorf("%w: session ID of %d bytes, want 1 to %d", ErrInvalidParams, n, MaxSessionIDLen)
	}
	signers, err := validateParties(p.Parties)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidParams, err)
	}
	if p.Self != share.Self() {
		return nil, fmt.Errorf("%w: self %q but the key share is %q's", ErrInvalidParams, p.Self, share.Self())
	}
	if p.Threshold != share.Threshold() {
		return nil, fmt.Errorf("%w: threshold %d but the key's is %d", ErrInvalidParams, p.Threshold, share.Threshold())
	}
	if len(signers) < p.Threshold+1 {
		return nil, fmt.Errorf("%w: %d signers but the key needs %d", ErrInvalidParams, len(signers), p.Threshold+1)
	}
	if len(signers) < 2 {
		return nil, fmt.Errorf("%w: a session needs at least 2 parties", ErrInvalidParams)
	}
	all := share.Parties()
	for _, s := range signers {
		if !slices.Contains(all, s) {
			return nil, fmt.Errorf("%w: signer %q holds no share of the key", ErrInvalidParams, s)
		}
	}
	if !slices.Contains(signers, p.Self) {
		return nil, fmt.Errorf("%w: self %q is not among the signers", ErrInvalidParams, p.Self)
	}
	return signers, nil
}

// Keygen starts a distributed key generation among p.Parties. Its result is
// this party's *KeyShare. The first round (Paillier key sampling) runs inside
// Keygen and takes seconds of CPU.
func (e *Engine) Keygen(p Params) (*Session[*KeyShare], error) {
	parties, err := p.validate()
	if err != nil {
		return nil, err
	}
	s, err := e.startSession(ProtocolKeygen, p.SessionID, p.Self, parties,
		cmp.Keygen(curve.Secp256k1{}, party.ID(p.Self), toLibIDs(parties), p.Threshold, nil),
		func(res any) (any, error) {
			cfg, ok := res.(*cmp.Config)
			if !ok {
				return nil, fmt.Errorf("unexpected result %T", res)
			}
			return newKeyShare(cfg)
		})
	if err != nil {
		return nil, err
	}
	return &Session[*KeyShare]{s: s}, nil
}

// Refresh starts a key refresh among all the key's parties: everyone gets
// new shares and auxiliary parameters of the same public key and chain code,
// and the old shares stop working with the new ones. Its result is this
// party's new *KeyShare. p must list exactly the key's parties and
// threshold.
func (e *Engine) Refresh(p Params, share *KeyShare) (*Session[*KeyShare], error) {
	parties, err := p.validate()
	if err != nil {
		return nil, err
	}
	if share == nil {
		return nil, fmt.Errorf("%w: no key share", ErrInvalidParams)
	}
	if p.Self != share.Self() || p.Threshold != share.Threshold() || !slices.Equal(parties, share.Parties()) {
		return nil, fmt.Errorf("%w: refresh must run with the key's own parties and threshold", ErrInvalidParams)
	}
	cfg := share.sessionConfig()
	s, err := e.startSession(ProtocolRefresh, p.SessionID, p.Self, parties,
		cmp.Refresh(cfg, nil),
		func(res any) (any, error) {
			cfg, ok := res.(*cmp.Config)
			if !ok {
				return nil, fmt.Errorf("unexpected result %T", res)
			}
			fresh, err := newKeyShare(cfg)
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(fresh.publicKey, share.publicKey) || !bytes.Equal(fresh.cfg.ChainKey, share.cfg.ChainKey) {
				return nil, errors.New("refresh changed the public key or chain code")
			}
			return fresh, nil
		})
	if err != nil {
		return nil, err
	}
	return &Session[*KeyShare]{s: s}, nil
}

// Presign starts the offline phase among the signers p.Parties. Its result
// is this party's *Presignature, which must go into a PresignStore: the only
// way to sign with it is PresignOnline, which takes it out again. A
// presignature is made for the master key and serves any derivation path.
func (e *Engine) Presign(p Params, share *KeyShare) (*Session[*Presignature], error) {
	signers, err := p.validateSigners(share)
	if err != nil {
		return nil, err
	}
	cfg := share.sessionConfig()
	s, err := e.startSession(ProtocolPresign, p.SessionID, p.Self, signers,
		cmp.Presign(cfg, toLibIDs(signers), nil),
		func(res any) (any, error) {
			pre, ok := res.(*ecdsa.PreSignature)
			if !ok {
				return nil, fmt.Errorf("unexpected result %T", res)
			}
			return newPresignature(share, pre)
		})
	if err != nil {
		return nil, err
	}
	return &Session[*Presignature]{s: s}, nil
}

// SignInput is what a signing session signs.
type SignInput struct {
	// Share is this party's key share.
	Share *KeyShare
	// Digest is the 32-byte message digest to sign.
	Digest []byte
	// Path is the BIP-32 unhardened derivation path of the signing key; the
	// empty path signs with the master key.
	Path Path
}

func (in SignInput) validate() error {
	if len(in.Digest) != 32 {
		return fmt.Errorf("%w: digest of %d bytes, want 32", ErrInvalidParams, len(in.Digest))
	}
	return in.Path.validate()
}

// Sign starts a full signing among the signers p.Parties, without a
// presignature: the fallback when none is ready. Its result is the
// *Signature of in.Digest under the key at in.Path, already verified.
func (e *Engine) Sign(p Params, in SignInput) (*Session[*Signature], error) {
	signers, err := p.validateSigners(in.Share)
	if err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	derived, d, err := e.deriveConfig(in.Share, in.Path)
	if err != nil {
		return nil, err
	}
	digest := slices.Clone(in.Digest)
	s, err := e.startSession(ProtocolSign, p.SessionID, p.Self, signers,
		cmp.Sign(derived, toLibIDs(signers), digest, nil),
		signatureFinisher(d.publicKey, digest))
	if err != nil {
		return nil, err
	}
	return &Session[*Signature]{s: s}, nil
}

// PresignOnline takes the presignature id out of store and starts the one
// online round that signs in.Digest with it, among the presignature's
// signers, who must be exactly p.Parties. Its result is the *Signature of
// in.Digest under the key at in.Path, already verified.
//
// The presignature is taken before anything else can fail, except checks of
// the arguments themselves, and is never put back: once PresignOnline has
// taken it, it is spent even if the session then fails. Take's errors
// (ErrPresignatureUsed, ErrPresignatureNotFound, ...) are returned as they
// are. A presignature made for another key, another epoch of the key (before
// a refresh), another party or other signers gives ErrPresignatureMismatch.
func (e *Engine) PresignOnline(ctx context.Context, p Params, in SignInput, store PresignStore, id PresignatureID) (*Session[*Signature], error) {
	signers, err := p.validateSigners(in.Share)
	if err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, fmt.Errorf("%w: no presignature store", ErrInvalidParams)
	}
	d, err := e.derive(in.Share.publicKey, in.Share.cfg.ChainKey, in.Path)
	if err != nil {
		return nil, err
	}
	pre, err := store.Take(ctx, id)
	if err != nil {
		return nil, err
	}
	if pre == nil || pre.id != id {
		return nil, fmt.Errorf("%w: store returned another presignature", ErrPresignatureMismatch)
	}
	switch {
	case !bytes.Equal(pre.publicKey, in.Share.publicKey):
		return nil, fmt.Errorf("%w: it belongs to another key", ErrPresignatureMismatch)
	case !bytes.Equal(pre.epoch, in.Share.cfg.RID):
		return nil, fmt.Errorf("%w: it predates the key share's last refresh", ErrPresignatureMismatch)
	case pre.self != p.Self:
		return nil, fmt.Errorf("%w: it is %q's share", ErrPresignatureMismatch, pre.self)
	case !slices.Equal(pre.signers, signers):
		return nil, fmt.Errorf("%w: its signers are %v", ErrPresignatureMismatch, pre.signers)
	}
	// The presignature is re-randomized for this digest and path (see
	// rerandomize), then the library signs with the master key's config and
	// it for the derived message m' (see derivedMessage); the finisher
	// checks the signature of the caller's digest under the derived public
	// key.
	lib := pre.sessionCopy()
	rho, err := rerandomizer(lib, in.Share.publicKey, in.Share.cfg.ChainKey, in.Path, in.Digest)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLocal, err)
	}
	rerandomize(lib, rho)
	msg, err := derivedMessage(lib, in.Digest, d.tweak)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLocal, err)
	}
	cfg := in.Share.sessionConfig()
	digest := slices.Clone(in.Digest)
	s, err := e.startSession(ProtocolPresignOnline, p.SessionID, p.Self, signers,
		cmp.PresignOnline(cfg, lib, msg, nil),
		signatureFinisher(d.publicKey, digest))
	if err != nil {
		return nil, err
	}
	return &Session[*Signature]{s: s}, nil
}

// signatureFinisher converts the library's signature and checks it, with an
// independent verifier, against the derived public key.
func signatureFinisher(pub, digest []byte) func(any) (any, error) {
	return func(res any) (any, error) {
		sig, ok := res.(*ecdsa.Signature)
		if !ok {
			return nil, fmt.Errorf("unexpected result %T", res)
		}
		out, err := newSignature(sig)
		if err != nil {
			return nil, err
		}
		if !out.Verify(pub, digest) {
			return nil, errors.New("signature does not verify")
		}
		return out, nil
	}
}
