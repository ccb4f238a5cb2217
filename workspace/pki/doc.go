// Package pki is the workspace's small certificate authority.
//
// On first start the workspace generates an ECDSA P-256 CA. The CA issues
// three kinds of certificates, told apart by their extended key usage and
// organizational unit:
//   - the server certificate, for the gRPC listener (server auth);
//   - the admin client certificate, kept in the data directory for the CLI;
//   - one client certificate per API user, issued at pairing from a CSR.
//
// Clients trust the server by a pin of the CA: the SHA-256 of the CA's
// SubjectPublicKeyInfo. The pin travels in the pairing token, so a co-signer
// needs nothing else to reach the workspace securely. Host names are not
// checked: the pinned CA is private to one workspace and signs server
// certificates for that workspace only, and a client certificate (which the
// same CA signs) is refused as a server certificate because it lacks the
// server-auth key usage.
//
// Everything here is safe for concurrent use; values are immutable once built.
package pki
