package enclave

import "errors"

// Errors of sealing. Backends wrap them with %w and add detail that is never
// secret; match them with errors.Is.
var (
	// ErrMalformedBlob is returned by Unseal when the blob is not a sealed
	// blob: truncated, wrong magic, unknown version, kind or key policy.
	ErrMalformedBlob = errors.New("enclave: malformed sealed blob")

	// ErrTampered is returned by Unseal when the blob's authentication tag
	// does not verify: the blob was modified after sealing.
	ErrTampered = errors.New("enclave: sealed blob was tampered with")

	// ErrWrongAssociatedData is returned by Unseal when the associated data
	// differs from the one given to Seal: the blob belongs to another record.
	ErrWrongAssociatedData = errors.New("enclave: sealed blob belongs to another record (associated data differs)")

	// ErrForeignEnclave is returned by Unseal when another machine, or an
	// enclave of another kind, sealed the blob.
	ErrForeignEnclave = errors.New("enclave: sealed by a different enclave; this data directory belongs to another machine")

	// ErrOtherBuild is returned by Unseal when the blob was sealed on this
	// machine under a key policy that this build does not satisfy: other code
	// under KeyPolicyCode, another signer or product under KeyPolicyProduct.
	ErrOtherBuild = errors.New("enclave: sealed by another build of the enclave; its key policy does not cover this build")
)

// Errors of attestation.
var (
	// ErrReportDataTooLong is returned by Evidence when the report data is
	// longer than MaxReportData.
	ErrReportDataTooLong = errors.New("enclave: report data longer than 64 bytes")

	// ErrMalformedEvidence is returned by Verify when the evidence does not
	// parse.
	ErrMalformedEvidence = errors.New("enclave: malformed attestation evidence")

	// ErrUnsupportedKind is returned by Verify when the verifier cannot check
	// evidence of that enclave kind.
	ErrUnsupportedKind = errors.New("enclave: verifier does not support this enclave kind")

	// ErrEvidenceUnverified is returned by Verify when the evidence parses
	// but its signature or trust chain does not verify.
	ErrEvidenceUnverified = errors.New("enclave: attestation evidence does not verify")

	// ErrNotAllowed is returned by Verify and Policy.Check when genuine
	// evidence proves an identity that the policy does not allow.
	ErrNotAllowed = errors.New("enclave: enclave identity not allowed by policy")

	// ErrInvalidPolicy is returned by Policy.Validate, and by Verify given an
	// invalid policy.
	ErrInvalidPolicy = errors.New("enclave: invalid attestation policy")
)

// Errors of parsing names.
var (
	// ErrUnknownKind is returned by ParseKind for an unknown name.
	ErrUnknownKind = errors.New("enclave: unknown enclave kind")

	// ErrUnknownKeyPolicy is returned by ParseKeyPolicy for an unknown name.
	ErrUnknownKeyPolicy = errors.New("enclave: unknown key policy")
)
