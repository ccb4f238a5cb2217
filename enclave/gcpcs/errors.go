package gcpcs

import (
	"errors"
	"fmt"

	"github.com/coterie-mpc/coterie/enclave"
)

// Refusals of Verify. Each also matches, with errors.Is, the enclave
// sentinel named in its comment.
var (
	// ErrMalformed is returned for evidence that is not a JWT with the
	// claims of a Confidential Space token (enclave.ErrMalformedEvidence).
	ErrMalformed = fmt.Errorf("gcpcs: malformed attestation token (%w)", enclave.ErrMalformedEvidence)

	// ErrBadSignature is returned when the token is not RS256, names no key
	// of the issuer, or its signature does not verify
	// (enclave.ErrEvidenceUnverified).
	ErrBadSignature = fmt.Errorf("gcpcs: the attestation token's signature does not verify (%w)", enclave.ErrEvidenceUnverified)

	// ErrWrongIssuer is returned for a token whose issuer no
	// confidential-space rule of the policy names
	// (enclave.ErrEvidenceUnverified).
	ErrWrongIssuer = fmt.Errorf("gcpcs: the attestation token is from an issuer the policy does not name (%w)", enclave.ErrEvidenceUnverified)

	// ErrWrongAudience is returned for a token made for another audience
	// (enclave.ErrEvidenceUnverified).
	ErrWrongAudience = fmt.Errorf("gcpcs: the attestation token is for another audience (%w)", enclave.ErrEvidenceUnverified)

	// ErrExpired is returned for a token that is expired, not valid yet, or
	// issued in the future (enclave.ErrEvidenceUnverified).
	ErrExpired = fmt.Errorf("gcpcs: the attestation token is expired or not valid yet (%w)", enclave.ErrEvidenceUnverified)

	// ErrNotConfidentialSpace is returned for a genuine token whose swname
	// is not CONFIDENTIAL_SPACE, whose hwmodel no rule of its issuer
	// admits, or whose image is not STABLE (enclave.ErrEvidenceUnverified).
	ErrNotConfidentialSpace = fmt.Errorf("gcpcs: the attestation token is not from an allowed Confidential Space VM (%w)", enclave.ErrEvidenceUnverified)

	// ErrNonceMismatch is returned when the token's nonces do not carry
	// report data (enclave.ErrEvidenceUnverified).
	ErrNonceMismatch = fmt.Errorf("gcpcs: the attestation token's nonces do not carry the report data (%w)", enclave.ErrEvidenceUnverified)

	// ErrDebugMode is returned for a debug workload that no rule allowing
	// debug admits (enclave.ErrNotAllowed).
	ErrDebugMode = fmt.Errorf("gcpcs: the workload runs a debug image (%w)", enclave.ErrNotAllowed)

	// ErrDigestNotAllowed is returned for a workload whose image digest no
	// rule admits (enclave.ErrNotAllowed).
	ErrDigestNotAllowed = fmt.Errorf("gcpcs: the workload's image digest is not allowed by the policy (%w)", enclave.ErrNotAllowed)
)

// ErrKeysUnavailable is returned by Verify when the issuer's keys cannot be
// fetched: the token was not judged, and the join may be tried again.
var ErrKeysUnavailable = errors.New("gcpcs: the token issuer's keys are unavailable")
