// Package token encodes and checks pairing tokens.
//
// A pairing token is the one string a user pastes into a co-signer. It
// carries everything the co-signer needs to reach the workspace and to trust
// it (the address and a pin of the workspace CA) and everything the
// workspace needs to recognise it (the user ID and a 32-byte one-time
// secret), plus an expiry:
//
//	coterie-pair-v1.<base64url(protobuf WsPairingToken)>.<base64url(HMAC-SHA256)>
//
// The MAC, under a key only the workspace holds, makes every field
// tamper-evident to the workspace: a token whose user, expiry or address was
// edited is refused. The co-signer cannot check the MAC; it parses the token,
// checks the expiry, and trusts the server only if the server's CA matches
// the pin. The workspace stores only ID(secret), never the secret.
//
// The functions here are pure and safe for concurrent use.
package token
