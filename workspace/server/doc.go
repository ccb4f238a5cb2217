// Package server is the workspace's gRPC front: the WsCosigner service for
// API users (co-signer nodes) and the WsAdmin service for the operator, on
// one TLS listener.
//
// # Authentication
//
// TLS 1.3 with the workspace CA's server certificate. Clients authenticate
// with client certificates from the same CA:
//   - WsCosigner.Pair needs none: the pairing token is the credential. It
//     issues the user's client certificate from the caller's CSR.
//   - Every other WsCosigner method needs a user certificate whose hash is
//     the one recorded at the user's latest pairing, so re-pairing retires
//     the old certificate.
//   - WsAdmin needs the admin certificate from the data directory.
//
// Failures are Unauthenticated (no or unknown credential) or
// PermissionDenied (a credential of the wrong kind, or a role that does not
// allow the method).
//
// # Delivery
//
// Poll is a server stream: it sends the user's open requests after the
// caller's cursor, a caught_up marker, then each new request as soon as the
// store commits it (the store's Changed channel wakes every poller of the
// user; there is no poll interval). Delivery is at least once: a poller that
// reconnects with the last cursor it saw misses nothing, and cursor 0
// returns every open request.
//
// # Errors
//
// Every error is a gRPC status with a code that says what kind of problem it
// is (see status.go) and a message that says what exactly was wrong. Bad
// input never changes stored state, except that a SIGN session spends its
// presignature as soon as it starts (invariant I1).
//
// A Server is safe for concurrent use.
package server
