package enclave

import (
	"context"
	"fmt"
)

// MaxReportData is the most report data that evidence can carry. It matches
// SGX's 64-byte report data; callers put a hash there, never raw data.
const MaxReportData = 64

// Kind names a trusted execution environment.
type Kind uint8

// The enclave kinds. KindUnknown is the zero value and never valid.
const (
	KindUnknown Kind = iota
	// KindSim is the simulated enclave of package sim: development only.
	KindSim
	// KindSGX is Intel SGX through EGo (package sgx, build tag ego).
	KindSGX
	// KindNitro is an AWS Nitro Enclave. Every build verifies its evidence
	// (package nitro); a build with the nitro tag runs on it.
	KindNitro
	// KindConfidentialSpace is Google Confidential Space. Every build
	// verifies its evidence (package gcpcs); a build with the gcpcs tag
	// runs on it.
	KindConfidentialSpace
)

var kindNames = [...]string{
	KindUnknown:           "unknown",
	KindSim:               "sim",
	KindSGX:               "sgx",
	KindNitro:             "nitro",
	KindConfidentialSpace: "confidential-space",
}

// String returns the kind's lowercase name, as used in flags and config.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is a known kind other than KindUnknown.
func (k Kind) Valid() bool { return k > KindUnknown && int(k) < len(kindNames) }

// ParseKind returns the Kind named s, or ErrUnknownKind. It also takes
// "gcpcs", the package's name, for confidential-space.
func ParseKind(s string) (Kind, error) {
	if s == "gcpcs" {
		return KindConfidentialSpace, nil
	}
	for k, name := range kindNames {
		if name == s && Kind(k).Valid() {
			return Kind(k), nil
		}
	}
	return KindUnknown, fmt.Errorf("%w: %q (want one of sim, sgx, nitro, confidential-space)", ErrUnknownKind, s)
}

// KeyPolicy says what a sealing key is bound to, and so which future builds
// can unseal what this build seals.
type KeyPolicy uint8

// The key policies. KeyPolicyUnknown is the zero value and never valid.
const (
	KeyPolicyUnknown KeyPolicy = iota
	// KeyPolicyCode binds the key to this exact code: SGX MRENCLAVE, Nitro
	// PCR0, a Confidential Space image digest, the sim's executable hash. An
	// upgrade cannot unseal the data; it must get it again from a peer.
	KeyPolicyCode
	// KeyPolicyProduct binds the key to the signer and product: SGX MRSIGNER
	// and ISVPRODID, a KMS key policy on Nitro PCR8 or on the image signer.
	// Later builds signed by the same signer for the same product unseal it,
	// so data survives upgrades.
	KeyPolicyProduct
)

// String returns the policy's lowercase name, as used in flags and config.
func (p KeyPolicy) String() string {
	switch p {
	case KeyPolicyCode:
		return "code"
	case KeyPolicyProduct:
		return "product"
	default:
		return fmt.Sprintf("key-policy(%d)", uint8(p))
	}
}

// Valid reports whether p is KeyPolicyCode or KeyPolicyProduct.
func (p KeyPolicy) Valid() bool { return p == KeyPolicyCode || p == KeyPolicyProduct }

// ParseKeyPolicy returns the KeyPolicy named s ("code" or "product").
func ParseKeyPolicy(s string) (KeyPolicy, error) {
	switch s {
	case "code":
		return KeyPolicyCode, nil
	case "product":
		return KeyPolicyProduct, nil
	}
	return KeyPolicyUnknown, fmt.Errorf("%w: %q (want code or product)", ErrUnknownKeyPolicy, s)
}

// Sealer encrypts data so that only this enclave, on this machine, can
// decrypt it again. Which builds of the enclave count as "this enclave" is the
// sealer's KeyPolicy, fixed when the sealer is built.
//
// All methods are safe for concurrent use. Returned slices belong to the
// caller; Sealer keeps no reference to its arguments.
type Sealer interface {
	// Kind returns the enclave kind that seals.
	Kind() Kind

	// KeyPolicy returns the policy that Seal uses.
	KeyPolicy() KeyPolicy

	// Seal encrypts plaintext and authenticates ad (associated data, which
	// may be nil) with a key that never leaves the enclave. The same ad must
	// be given to Unseal. Use ad to bind the blob to the record it belongs
	// to, so that a blob moved to another record does not unseal there.
	Seal(plaintext, ad []byte) ([]byte, error)

	// Unseal decrypts a blob produced by Seal of this enclave. It unseals
	// blobs sealed under either key policy, as long as this enclave still
	// satisfies the policy the blob was sealed under. Errors:
	//   - ErrMalformedBlob: not a sealed blob at all (truncated, bad header);
	//   - ErrForeignEnclave: sealed by another machine or enclave kind;
	//   - ErrOtherBuild: the key policy bound it to a build this is not;
	//   - ErrWrongAssociatedData: ad differs from the one given to Seal;
	//   - ErrTampered: the blob was modified after sealing.
	Unseal(blob, ad []byte) ([]byte, error)
}

// Verifier checks evidence produced by a peer's Attester.
//
// Verify is safe for concurrent use and may do I/O (a Confidential Space
// verifier fetches the token issuer's keys), so it takes a context.
type Verifier interface {
	// Verify checks that evidence is genuine and that the identity it proves
	// is allowed by p, and returns that identity. The caller then checks
	// Identity.ReportData against what it expects the peer to have bound.
	// Errors:
	//   - ErrMalformedEvidence: the evidence does not parse;
	//   - ErrUnsupportedKind: this verifier cannot check evidence of its kind;
	//   - ErrEvidenceUnverified: a signature or trust chain does not verify;
	//   - ErrNotAllowed: genuine, but p allows no such identity;
	//   - ErrInvalidPolicy: p itself is invalid (see Policy.Validate).
	Verify(ctx context.Context, evidence []byte, p Policy) (Identity, error)
}

// Attester produces evidence that this enclave, running this code, vouches
// for report data of the caller's choosing. It also verifies evidence of its
// own kind from peers.
//
// All methods are safe for concurrent use. Returned slices belong to the
// caller.
type Attester interface {
	Verifier

	// Kind returns the enclave kind that attests.
	Kind() Kind

	// Evidence returns evidence over reportData, at most MaxReportData bytes
	// (shorter data is padded with zeros, as SGX does). Put a hash of what you
	// want to bind there, such as a hash of a fresh public key. Evidence
	// returns ErrReportDataTooLong for longer data.
	Evidence(ctx context.Context, reportData []byte) ([]byte, error)
}

// Enclave is a backend that both seals and attests: what a node runs on.
type Enclave interface {
	Sealer
	Attester
	// Self returns this enclave's own identity (without report data), as
	// its evidence proves it to peers.
	Self() Identity
}
