package nitro

import (
	"fmt"

	"github.com/coterie-mpc/coterie/enclave"
)

// Refusals of Verify and VerifyDocument. Each also matches, with errors.Is,
// the enclave sentinel named in its comment.
var (
	// ErrMalformed is returned for a document that does not decode as a
	// Nitro attestation document (enclave.ErrMalformedEvidence).
	ErrMalformed = fmt.Errorf("nitro: malformed attestation document (%w)", enclave.ErrMalformedEvidence)

	// ErrBadSignature is returned when the COSE signature does not verify
	// with the document's leaf certificate (enclave.ErrEvidenceUnverified).
	ErrBadSignature = fmt.Errorf("nitro: the attestation document's signature does not verify (%w)", enclave.ErrEvidenceUnverified)

	// ErrWrongChain is returned when the leaf certificate does not chain to
	// a trusted root through the document's cabundle
	// (enclave.ErrEvidenceUnverified).
	ErrWrongChain = fmt.Errorf("nitro: the attestation document's certificate does not chain to the Nitro root (%w)", enclave.ErrEvidenceUnverified)

	// ErrExpired is returned when a certificate of the chain is outside its
	// validity, or the document's timestamp is older than Config.MaxAge or
	// in the future (enclave.ErrEvidenceUnverified).
	ErrExpired = fmt.Errorf("nitro: the attestation document or its certificates are expired or not yet valid (%w)", enclave.ErrEvidenceUnverified)

	// ErrNonceMismatch is returned by VerifyDocument when the document's
	// nonce is not the one the caller expects (enclave.ErrEvidenceUnverified).
	ErrNonceMismatch = fmt.Errorf("nitro: the attestation document's nonce is not the expected one (%w)", enclave.ErrEvidenceUnverified)

	// ErrDebugMode is returned by Verify for an enclave in debug mode (its
	// PCRs are all zero and the parent can read its memory) that no rule
	// allowing debug admits (enclave.ErrNotAllowed).
	ErrDebugMode = fmt.Errorf("nitro: the enclave runs in debug mode (%w)", enclave.ErrNotAllowed)

	// ErrPCRNotAllowed is returned by Verify for a genuine document whose
	// PCRs no rule of the policy admits (enclave.ErrNotAllowed).
	ErrPCRNotAllowed = fmt.Errorf("nitro: the enclave's PCRs are not allowed by the policy (%w)", enclave.ErrNotAllowed)
)
