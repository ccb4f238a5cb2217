package actors

import "errors"

// Sentinel errors.
var (
	// ErrInvalidConfig is returned by Config.Validate, User.Validate, New and
	// AddUser when a configuration is unusable; the wrapped message lists
	// every problem.
	ErrInvalidConfig = errors.New("actors: invalid config")
	// ErrNotStarted is returned by AddUser and Status before Start.
	ErrNotStarted = errors.New("actors: system not started")
	// ErrStopped is returned by Start, AddUser and Status after Stop.
	ErrStopped = errors.New("actors: system stopped")
	// ErrUserExists is returned by AddUser for a user already added.
	ErrUserExists = errors.New("actors: user already added")
	// ErrKeyRecord is returned (wrapped) when a key record is missing,
	// does not decrypt, or does not decode. The request fails with it.
	ErrKeyRecord = errors.New("actors: key record unusable")
	// ErrWorkersBusy is returned when the MPC worker pool's queue is full;
	// the job is retried later.
	ErrWorkersBusy = errors.New("actors: worker pool busy")
	// ErrNoPresignature is returned when no presignature could be reserved
	// and none could be made for a digest.
	ErrNoPresignature = errors.New("actors: no presignature available")
	// ErrLostOwnership is returned when the cluster no longer lets this node
	// finish a request (it was released); the Session stops without a
	// terminal report, another node finishes the request.
	ErrLostOwnership = errors.New("actors: request no longer owned by this node")
	// ErrMalformedRequest is returned (wrapped) by the Session's check of
	// what the workspace says about a request: another request's or user's
	// record, an unknown kind, a digest that is not 32 bytes, a hardened or
	// over-long derivation path, a config change of an unknown type or
	// without its payload. The request fails with it and is never signed
	// or approved.
	ErrMalformedRequest = errors.New("actors: malformed workspace request")
	// ErrContentChanged fails a request whose content (digests, paths,
	// amounts, destinations, payload) differs from what the callback
	// handler approved: an APPROVE covers exactly the content it was asked
	// about (I5).
	ErrContentChanged = errors.New("actors: the request changed after the callback handler approved it")
	// ErrStopTimeout is returned by Stop when sessions were still running
	// at its deadline.
	ErrStopTimeout = errors.New("actors: sessions still running at the stop deadline")
)
