// Package gcpcs is Google Cloud Confidential Space attestation: it verifies
// a Confidential Space attestation token in pure Go, so that any Coterie
// node can admit a Confidential Space node, and gets a token from the
// Confidential Space launcher for this node's own evidence.
//
// # Verification
//
// A token is an OIDC JWT signed with RS256 by an attestation service. The
// trust anchors are not the node's configuration but the policy each
// Verify is given (on a member, the cluster's policy from raft): its
// confidential-space rules name the issuers they admit (Google's when a
// rule names none) and the hardware models (AMD SEV and Intel TDX by
// default), so that a host which controls a node's config file cannot
// make the node trust an issuer of its own. Verifier checks, in order:
//
//   - the issuer: the token's iss, read before anything is verified,
//     must be one that a confidential-space rule admits (ErrWrongIssuer);
//     no key of any other issuer is ever fetched;
//   - the signature, with that issuer's key named by the token's kid; the
//     keys come from the issuer's OpenID configuration (jwks_uri), are
//     cached per issuer for Config.KeysTTL on the injected clock, and
//     fetched at most once a minute per issuer whatever the outcome, a
//     cached key serving through an outage (ErrBadSignature,
//     ErrKeysUnavailable);
//   - the audience, always Audience, and the expiry and issue times
//     against the injected clock (ErrWrongAudience, ErrExpired);
//   - swname CONFIDENTIAL_SPACE, a hwmodel that a rule of the issuer
//     admits, and secboot true: the VM booted Google's signed chain
//     (ErrNotConfidentialSpace);
//   - the nonces: Coterie's evidence carries its 64-byte report data in
//     eat_nonce as two nonces, "0" and "1" followed by the hex of each
//     half, since a nonce holds at most 74 bytes (ErrNonceMismatch);
//   - a production image must be STABLE among its support attributes
//     (ErrNotConfidentialSpace);
//   - dbgstat: anything but disabled-since-boot is a debug workload, whose
//     memory its operator can read, refused unless the policy allows debug
//     (ErrDebugMode);
//   - submods.container.image_digest against the rules that admit the
//     token's issuer and hwmodel, whose measurement is the image's
//     SHA-256 digest (ErrDigestNotAllowed).
//
// # Evidence
//
// Attester asks a TokenSource for a token with Audience and the report
// data's nonces, and frames it as confidential-space evidence.
// Launcher is the TokenSource inside a Confidential Space VM: the
// launcher's HTTP server on the unix socket
// /run/container_launcher/teeserver.sock (POST /v1/token).
//
// Sealing with Cloud KMS through workload identity federation is in
// package kmsseal, which the backend links only in a build with the gcpcs
// tag.
package gcpcs
