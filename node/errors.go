package node

import "errors"

var (
	// ErrInvalidConfig is returned by Config.Validate, ParseConfig and
	// LoadConfig for a config that cannot run; each problem wraps it.
	ErrInvalidConfig = errors.New("node: invalid config")
	// ErrNotReady is returned by operations that need a serving node
	// (pairing, the user list, join tokens, Drain and Leave) while it is
	// still starting, or draining, leaving or stopping.
	ErrNotReady = errors.New("node: not ready")
	// ErrUnauthorized is returned by the admin client when the node refused
	// the admin token.
	ErrUnauthorized = errors.New("node: admin token refused")
	// ErrRoleMismatch is returned by Pair when the pairing token is for
	// another role than the one the operator asked for, or for no role a
	// co-signer can serve.
	ErrRoleMismatch = errors.New("node: pairing token is for another role")
	// ErrAlreadyPaired is returned by Pair when the token's API user is
	// already paired with this cluster.
	ErrAlreadyPaired = errors.New("node: API user already paired")
	// ErrBadToken is returned by Pair for a token that does not parse or
	// has expired.
	ErrBadToken = errors.New("node: bad pairing token")
	// ErrBadRecord is returned when a user or key record in the cluster
	// state does not decode or open: a bug or tampering, never silently
	// skipped.
	ErrBadRecord = errors.New("node: malformed cluster record")
	// ErrNoCallbackKey is returned when the cluster's callback key did not
	// appear in time: no leader created it.
	ErrNoCallbackKey = errors.New("node: cluster callback key not available")
	// ErrAdminAPI is returned by the admin client for an answer it cannot
	// use; the node's message is included.
	ErrAdminAPI = errors.New("node: admin API error")
	// ErrNoRequest is returned by AdminClient.Request for a request the
	// cluster has no record of (never claimed, or completed long ago).
	ErrNoRequest = errors.New("node: no such request in the cluster")
	// ErrRefused is returned by the cluster operations a node refuses
	// itself, with the explanation: removing this node (Leave does that,
	// after a drain), transferring leadership from a node that does not
	// lead or to no one.
	ErrRefused = errors.New("node: refused")
)
