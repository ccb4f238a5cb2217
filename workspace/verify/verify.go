package verify

import (
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
// for d's path.
func Signature(key *protocol.WsSigningKey, d *protocol.WsDigestToSign, sig []byte) error {
	pub, err := DerivedKey(key, d)
	if err != nil {
		return err
	}
	return SignatureUnder(pub, d, sig)
}

// SignatureUnder is Signature with the derived public key already computed
// by DerivedKey (compressed SEC1), for callers that cache it.
func SignatureUnder(pub []byte, d *protocol.WsDigestToSign, sig []byte) error {
	if len(sig) != 64 {
		return fmt.Errorf("%w: %d bytes, want 64", ErrBadSignature, len(sig))
	}
	var s mpc.Signature
	copy(s.R[:], sig[:32])
	copy(s.S[:], sig[32:])
	var sc secp256k1.ModNScalar
	if sc.SetBytes(&s.S) != 0 || sc.IsOverHalfOrder() {
		return fmt.Errorf("%w: s is not in low-S form", ErrBadSignature)
	}
	if !s.Verify(pub, d.GetDigest()) {
		return ErrBadSignature
	}
	return nil
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
// signature, and the approval signature. It returns the problems found and
// how many signatures and approvals it checked.
func Stored(u *protocol.WsUser, r *protocol.WsRequest) (problems []Problem, signatures, approvals int) {
	digests := r.GetTransaction().GetDigests()
	for _, s := range r.GetSignatures() {
		signatures++
		if int(s.GetIndex()) >= len(digests) {
			problems = append(problems, Problem{r.GetId(), s.GetIndex(), fmt.Errorf("%w: no digest %d", ErrBadSignature, s.GetIndex())})
			continue
		}
		if err := Signature(u.GetSigningKey(), digests[s.GetIndex()], s.GetSignature()); err != nil {
			problems = append(problems, Problem{r.GetId(), s.GetIndex(), err})
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
