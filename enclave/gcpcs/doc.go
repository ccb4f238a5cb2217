// Package gcpcs is Google Cloud Confidential Space attestation: it verifies
// a Confidential Space attestation token in pure Go, so that any Coterie
// node can admit a Confidential Space node, and gets a token from the
// Confidential Space launcher for this node's own evidence.
//
// # Verification
//
// A token is an OIDC JWT signed with RS256 by the attestation service.
// Verifier checks, in order:
//
//   - the signature, with the issuer's key named by the token's kid; the
//     keys come from the issuer's OpenID configuration (jwks_uri), are
//     cached for Config.KeysTTL on the injected clock, and fetched again
//     at most once a minute for an unknown kid (ErrBadSignature);
//   - the issuer, the audience, and the expiry and issue times against the
//     injected clock (ErrWrongIssuer, ErrWrongAudience, ErrExpired);
//   - swname CONFIDENTIAL_SPACE and an allowed hwmodel
//     (ErrNotConfidentialSpace);
//   - the nonces: Coterie's evidence carries its 64-byte report data in
//     eat_nonce as two nonces, "0" and "1" followed by the hex of each
//     half, since a nonce holds at most 74 bytes (ErrNonceMismatch);
//   - dbgstat: anything but disabled-since-boot is a debug workload, whose
//     memory its operator can read, refused unless the policy allows debug
//     (ErrDebugMode);
//   - submods.container.image_digest against the policy's rules, whose
//     measurement is the image's SHA-256 digest (ErrDigestNotAllowed).
//
// # Evidence
//
// Attester asks a TokenSource for a token with the configured audience and
// the report data's nonces, and frames it as confidential-space evidence.
// Launcher is the TokenSource inside a Confidential Space VM: the
// launcher's HTTP server on the unix socket
// /run/container_launcher/teeserver.sock (POST /v1/token).
//
// Sealing with Cloud KMS through workload identity federation is in
// package kmsseal, which the backend links only in a build with the gcpcs
// tag.
package gcpcs
