package store

import (
	"errors"
	"fmt"

	"github.com/coterie-mpc/coterie/protocol"
)

var (
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("store: closed")
	// ErrInUse is returned by New when another process holds the file.
	ErrInUse = errors.New("store: database is in use by another process")
	// ErrCorrupt is returned when a stored record does not decode.
	ErrCorrupt = errors.New("store: stored record is corrupt")

	// ErrUnknownWorkspace is returned for a workspace ID that does not exist.
	ErrUnknownWorkspace = errors.New("store: unknown workspace")
	// ErrUnknownVault is returned when a transaction's source vault account
	// does not exist in the user's workspace.
	ErrUnknownVault = errors.New("store: unknown vault account")
	// ErrUnknownUser is returned for a user ID that does not exist.
	ErrUnknownUser = errors.New("store: unknown user")
	// ErrUserState is returned when the user is not in the state the
	// operation needs (not paired yet, already paired, keygen not done).
	ErrUserState = errors.New("store: user is not in the right state")
	// ErrWrongRole is returned when the user's role does not allow the
	// operation: a transaction for an approver, a config change for a signer.
	ErrWrongRole = errors.New("store: user's role does not allow this")

	// ErrUnknownToken is returned by Pair for a token this workspace never
	// issued.
	ErrUnknownToken = errors.New("store: unknown pairing token")
	// ErrTokenUsed is returned by Pair for a token that was already redeemed.
	ErrTokenUsed = errors.New("store: pairing token was already used")
	// ErrTokenRevoked is returned by Pair for a token that a newer token for
	// the same user replaced.
	ErrTokenRevoked = errors.New("store: pairing token was replaced by a newer one")
	// ErrTokenExpired is returned by Pair for a token past its expiry.
	ErrTokenExpired = errors.New("store: pairing token has expired")

	// ErrUnknownRequest is returned for a request ID that does not exist or
	// belongs to another user (the two are not told apart).
	ErrUnknownRequest = errors.New("store: unknown request")
	// ErrReplayed is wrapped by *ReplayError.
	ErrReplayed = errors.New("store: replayed submission")
	// ErrIdempotencyConflict is returned when an idempotency key is reused
	// for a submission with different content.
	ErrIdempotencyConflict = errors.New("store: idempotency key already used for a different submission")
	// ErrNotOpen is returned when a request has reached a terminal state
	// that the operation cannot follow (a signature for a rejected request).
	ErrNotOpen = errors.New("store: request is no longer pending")
	// ErrWrongKind is returned for a signature on a config change or an
	// approval of a transaction.
	ErrWrongKind = errors.New("store: operation does not fit the request's kind")
	// ErrDigestIndex is returned for a digest index beyond the request's.
	ErrDigestIndex = errors.New("store: no such digest in the request")
	// ErrDigestSigned is returned by StartSign when the digest already has a
	// signature.
	ErrDigestSigned = errors.New("store: digest is already signed")

	// ErrPresignatureUnknown is returned by StartSign for a presignature the
	// cloud co-signers never stored for this user.
	ErrPresignatureUnknown = errors.New("store: unknown presignature")
	// ErrPresignatureUsed is returned by StartSign and PutPresignature for a
	// presignature that was already used or burned (invariant I1).
	ErrPresignatureUsed = errors.New("store: presignature already used")
	// ErrPresignatureExists is returned by PutPresignature for an ID that is
	// already stored.
	ErrPresignatureExists = errors.New("store: presignature already stored")
	// ErrKeyChanged is returned by StageRefresh when the refreshed key's
	// public key or chain code differs from the user's.
	ErrKeyChanged = errors.New("store: refreshed key has a different public key")
	// ErrTooManyRefreshes is returned by StageRefresh when the user already
	// has MaxPendingRefreshes refreshes awaiting activation.
	ErrTooManyRefreshes = errors.New("store: too many refreshes await activation")
	// ErrUnknownEpoch is returned by ActivateRefresh when no refresh of that
	// epoch awaits activation.
	ErrUnknownEpoch = errors.New("store: no refresh of that epoch awaits activation")
)

// ReplayError is returned by Submit when the idempotency key was already
// used for the same submission. Request is the one the first submission
// created; nothing new was stored.
type ReplayError struct {
	Request *protocol.WsRequest
}

func (e *ReplayError) Error() string {
	return fmt.Sprintf("%v: idempotency key %q already created request %s", ErrReplayed, e.Request.GetIdempotencyKey(), e.Request.GetId())
}

// Unwrap returns ErrReplayed.
func (e *ReplayError) Unwrap() error { return ErrReplayed }
