package verify

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

var (
	// ErrBadSignature is returned when a transaction signature does not
	// verify under the derived public key, is not 64 bytes, or is not in
	// low-S form.
	ErrBadSignature = errors.New("verify: signature does not verify under the derived public key")
	// ErrBadApproval is returned when an approval signature does not verify
	// under the user's approval key.
	ErrBadApproval = errors.New("verify: approval does not verify under the user's approval key")
	// ErrNoKey is returned when the user has no signing or approval key.
	ErrNoKey = errors.New("verify: user has no key for this")
)

// DerivedKey returns the compressed public key for a digest's derivation
// path below the user's signing key.
func DerivedKey(key *protocol.WsSigningKey, d *protocol.WsDigestToSign) ([]byte, error) {
	if key == nil || len(key.GetPublicKey()) == 0 {
		return nil, ErrNoKey
	}
	pub, err := mpc.DerivePublicKey(key.GetPublicKey(), key.GetChainCode(), mpc.Path(d.GetDerivationPath()))
	if err != nil {
		return nil, fmt.Errorf("verify: derive public key: %w", err)
	}
	return pub, nil
}

// Signature checks sig (r||s, low S) over digest d under the key derived
// for d's path, and returns that key and the signature's recovery ID.
func Signature(key *protocol.WsSigningKey, d *protocol.WsDigestToSign, sig []byte) (pub []byte, recoveryID byte, err error) {
	pub, err = DerivedKey(key, d)
	if err != nil {
		return nil, 0, err
	}
	recoveryID, err = SignatureUnder(pub, d, sig)
	return pub, recoveryID, err
}

// SignatureUnder is Signature with the derived public key already computed
// by DerivedKey (compressed SEC1), for callers that cache it. It returns
// the recovery ID: bit 0 is the parity of the y of the nonce point R, bit 1
// is set when R's x is at least the group order. With it, the public key
// follows from the signature and the digest alone (Ethereum's v).
func SignatureUnder(pub []byte, d *protocol.WsDigestToSign, sig []byte) (byte, error) {
	if len(sig) != 64 {
		return 0, fmt.Errorf("%w: %d bytes, want 64", ErrBadSignature, len(sig))
	}
	var s mpc.Signature
	copy(s.R[:], sig[:32])
	copy(s.S[:], sig[32:])
	var r, sc secp256k1.ModNScalar
	if sc.SetBytes(&s.S) != 0 || sc.IsOverHalfOrder() {
		return 0, fmt.Errorf("%w: s is not in low-S form", ErrBadSignature)
	}
	if r.SetBytes(&s.R) != 0 || !s.Verify(pub, d.GetDigest()) {
		return 0, ErrBadSignature
	}
	key, err := secp256k1.ParsePubKey(pub)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nonceRecoveryID(key, d.GetDigest(), &r, &sc)
}

// nonceRecoveryID computes the nonce point of a signature the way verification
// does, R = (e/s)·G + (r/s)·P, and reads the recovery ID off it. It is
// computed forward from the known public key, not by trying recoveries,
// so that a recovery by another implementation checks it independently.
func nonceRecoveryID(pub *secp256k1.PublicKey, digest []byte, r, s *secp256k1.ModNScalar) (byte, error) {
	var e, sInv, u1, u2 secp256k1.ModNScalar
	e.SetByteSlice(digest)
	sInv.InverseValNonConst(s)
	u1.Mul2(&e, &sInv)
	u2.Mul2(r, &sInv)
	var p, eG, rP, nonce secp256k1.JacobianPoint
	pub.AsJacobian(&p)
	secp256k1.ScalarBaseMultNonConst(&u1, &eG)
	secp256k1.ScalarMultNonConst(&u2, &p, &rP)
	secp256k1.AddNonConst(&eG, &rP, &nonce)
	if nonce.Z.IsZero() {
		return 0, fmt.Errorf("%w: the nonce point is at infinity", ErrBadSignature)
	}
	nonce.ToAffine()
	var x secp256k1.ModNScalar
	overflow := x.SetBytes(nonce.X.Bytes())
	if !x.Equals(r) {
		return 0, fmt.Errorf("%w: the nonce point does not match r", ErrBadSignature)
	}
	var id byte
	if nonce.Y.IsOdd() {
		id = 1
	}
	if overflow != 0 {
		id |= 2
	}
	return id, nil
}

// Approval checks sig over protocol.ApprovalDigest(r) under the user's
// Ed25519 approval key.
func Approval(u *protocol.WsUser, r *protocol.WsRequest, sig []byte) error {
	if len(u.GetApprovalPublicKey()) != ed25519.PublicKeySize {
		return ErrNoKey
	}
	d, err := protocol.ApprovalDigest(r)
	if err != nil {
		return err
	}
	if !ed25519.Verify(u.GetApprovalPublicKey(), d[:], sig) {
		return ErrBadApproval
	}
	return nil
}

// Problem is one failed check of a stored request.
type Problem struct {
	RequestID   string
	DigestIndex uint32
	Err         error
}

// Stored re-checks everything recorded on request r of user u: each digest
// signature with its recorded recovery ID and public key (when recorded),
// and the approval signature. It returns the problems found and how many
// signatures and approvals it checked.
func Stored(u *protocol.WsUser, r *protocol.WsRequest) (problems []Problem, signatures, approvals int) {
	digests := r.GetTransaction().GetDigests()
	for _, s := range r.GetSignatures() {
		signatures++
		if int(s.GetIndex()) >= len(digests) {
			problems = append(problems, Problem{r.GetId(), s.GetIndex(), fmt.Errorf("%w: no digest %d", ErrBadSignature, s.GetIndex())})
			continue
		}
		pub, id, err := Signature(u.GetSigningKey(), digests[s.GetIndex()], s.GetSignature())
		switch {
		case err != nil:
			problems = append(problems, Problem{r.GetId(), s.GetIndex(), err})
		case s.RecoveryId != nil && s.GetRecoveryId() != uint32(id):
			problems = append(problems, Problem{r.GetId(), s.GetIndex(), fmt.Errorf("%w: recorded recovery ID %d, the signature's is %d", ErrBadSignature, s.GetRecoveryId(), id)})
		case len(s.GetPublicKey()) > 0 && !bytes.Equal(s.GetPublicKey(), pub):
			problems = append(problems, Problem{r.GetId(), s.GetIndex(), fmt.Errorf("%w: recorded public key %x is not the derived %x", ErrBadSignature, s.GetPublicKey(), pub)})
		}
	}
	if r.GetState() == protocol.WsRequestState_WS_REQUEST_STATE_SIGNED && len(r.GetSignatures()) != len(digests) {
		problems = append(problems, Problem{r.GetId(), 0, fmt.Errorf("%w: signed with %d of %d digests", ErrBadSignature, len(r.GetSignatures()), len(digests))})
	}
	if len(r.GetApprovalSignature()) > 0 || r.GetState() == protocol.WsRequestState_WS_REQUEST_STATE_APPROVED {
		approvals++
		if err := Approval(u, r, r.GetApprovalSignature()); err != nil {
			problems = append(problems, Problem{r.GetId(), 0, err})
		}
	}
	return problems, signatures, approvals
}
