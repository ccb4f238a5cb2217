// Package nitro verifies AWS Nitro Enclaves attestation documents in pure
// Go, so that any Coterie node — sim, SGX, Confidential Space or Nitro —
// can admit a Nitro node to the cluster. It needs no NSM device, no cgo and
// no AWS SDK. The backend that runs inside a Nitro enclave sits behind the
// nitro build tag, so that the default build stays free of the SDK: its
// evidence comes from the NSM (package nsm), its sealing from a KMS data
// key released through the Recipient attestation (package kmsseal, which
// opens KMS's answer with package cms), over the parent's vsock proxies
// (packages vsock and imds).
//
// # What Verify checks
//
// An attestation document is a COSE_Sign1 (RFC 9052) over a CBOR map that
// the Nitro hypervisor fills in. VerifyDocument checks, in order:
//
//   - the structure: COSE_Sign1 with ES384 (alg -35) in the protected
//     header, a payload with every mandatory field, digest SHA384, 48-byte
//     PCRs, and bounded sizes (ErrMalformed);
//   - the ES384 signature by the document's leaf certificate, whose key
//     must be ECDSA P-384 (ErrBadSignature);
//   - the leaf's chain, through the document's cabundle, to a root of
//     Config.Roots, which in production is only the AWS Nitro Enclaves
//     root, pinned by its published SHA-256 fingerprint (ErrWrongChain);
//   - every certificate's validity and the document's timestamp against
//     the injected clock; a document older than Config.MaxAge is stale
//     (ErrExpired);
//   - optionally, the nonce a challenger asked for (ErrNonceMismatch).
//
// Verify, the enclave.Verifier, then reads the identity (PCR0 is the
// measurement, PCR8 the signer, PCR1 to PCR4 the further PCRs), treats an
// all-zero PCR0 as a debug-mode enclave, whose memory the parent can read,
// and checks the cluster's policy (ErrDebugMode, ErrPCRNotAllowed).
//
// # Evidence
//
// Coterie's Nitro evidence is a document whose user_data is the 64-byte
// report data (enclave.PadReportData), framed with enclave.AppendEvidence.
// The report data already binds the fresh transfer key and the join, so the
// nonce is left to challenge-response callers of VerifyDocument, and
// public_key to KMS's Recipient requests, whose documents carry the
// enclave's RSA key and no report data.
//
// # Errors
//
// Each refusal is a sentinel of this package that also matches the
// enclave package's category (ErrBadSignature is an
// enclave.ErrEvidenceUnverified, ErrPCRNotAllowed an enclave.ErrNotAllowed,
// and so on), so callers may match either. Errors hold no secret: a
// document is public.
package nitro
