package mpc

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Errors about one incoming message come wrapped in a
// *MessageError that names the sender; match them with errors.Is.
var (
	// ErrMalformed is returned when bytes or an envelope from a peer cannot be
	// decoded or break the wire format's rules (garbage).
	ErrMalformed = errors.New("mpc: malformed message")
	// ErrOversize is returned when an envelope or its payload exceeds the
	// configured size limit.
	ErrOversize = errors.New("mpc: message too large")
	// ErrWrongSession is returned when an envelope belongs to another session:
	// its session ID, protocol or transcript (SSID) differs from the session's.
	ErrWrongSession = errors.New("mpc: message for another session")
	// ErrUnknownParty is returned when an envelope's sender is not a party of
	// the session, or is the receiving party itself.
	ErrUnknownParty = errors.New("mpc: unknown party")
	// ErrMisrouted is returned when a point-to-point envelope is addressed to
	// another party.
	ErrMisrouted = errors.New("mpc: message addressed to another party")
	// ErrDuplicate is returned when the sender already delivered a message of
	// the same kind for the same round. The session is unchanged.
	ErrDuplicate = errors.New("mpc: duplicate message")
	// ErrRoundClosed is returned when an envelope is for a round that the
	// session has already completed.
	ErrRoundClosed = errors.New("mpc: round no longer open")
	// ErrRoundNotOpen is returned when an envelope is for a round so far ahead
	// that no honest party could have sent it yet.
	ErrRoundNotOpen = errors.New("mpc: round not open yet")
	// ErrSessionDone is returned by Accept once the session has finished,
	// successfully or not.
	ErrSessionDone = errors.New("mpc: session finished")
	// ErrNotDone is returned by Result while the session is still running.
	ErrNotDone = errors.New("mpc: session not finished")
	// ErrClosed is returned by Result when the session was closed before it
	// finished.
	ErrClosed = errors.New("mpc: session closed")
	// ErrInvalidParams is returned by session constructors when the session
	// ID, party set, threshold or inputs are invalid or disagree with the key
	// share.
	ErrInvalidParams = errors.New("mpc: invalid session parameters")
	// ErrInvalidPath is returned for a malformed or hardened derivation path,
	// or an index that BIP-32 declares unusable.
	ErrInvalidPath = errors.New("mpc: invalid derivation path")
	// ErrInvalidKey is returned when a public key or chain code is malformed.
	ErrInvalidKey = errors.New("mpc: invalid public key or chain code")
	// ErrInvalidKeyShare is returned when key-share bytes cannot be decoded.
	ErrInvalidKeyShare = errors.New("mpc: invalid key share")
	// ErrInvalidPresignature is returned when presignature bytes cannot be
	// decoded or the presignature is inconsistent.
	ErrInvalidPresignature = errors.New("mpc: invalid presignature")
	// ErrPresignatureMismatch is returned when a taken presignature does not
	// belong to the key share, the signing party or the signer set of the
	// session. The presignature stays consumed.
	ErrPresignatureMismatch = errors.New("mpc: presignature does not match session")
	// ErrPresignatureUsed is returned by PresignStore.Take for a presignature
	// that was already taken, and by Put for one that was taken before.
	ErrPresignatureUsed = errors.New("mpc: presignature already used")
	// ErrPresignatureNotFound is returned by PresignStore.Take for an ID that
	// the store never held.
	ErrPresignatureNotFound = errors.New("mpc: presignature not found")
	// ErrPresignatureExists is returned by PresignStore.Put for an ID that the
	// store already holds.
	ErrPresignatureExists = errors.New("mpc: presignature already stored")
	// ErrLocal is returned (wrapped) when the session failed through no fault
	// of a peer: randomness, an internal inconsistency, or a library bug.
	ErrLocal = errors.New("mpc: local failure")
)

// MessageError reports an incoming envelope that the session rejected before
// it reached the protocol. The session is unchanged and keeps running.
type MessageError struct {
	// Party is the sender that the envelope claims, possibly empty.
	Party PartyID
	// Round is the round that the envelope claims.
	Round uint32
	// Err is one of the sentinel errors above.
	Err error
	// Detail says what exactly was wrong; it never holds secret material.
	Detail string
}

// Error implements error.
func (e *MessageError) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	fmt.Fprintf(&b, " (from %q, round %d", e.Party, e.Round)
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	b.WriteString(")")
	return b.String()
}

// Unwrap returns the sentinel error.
func (e *MessageError) Unwrap() error { return e.Err }

// AbortError is the terminal error of a session that a misbehaving party
// caused: a bad proof, an invalid share, a message the protocol could not
// decode, or a broadcast echo that disagrees. Party names the culprit; it is
// empty only when the protocol could not tell who misbehaved (a final
// signature check in full signing that fails without a failed proof).
type AbortError struct {
	// Party is the first culprit; Culprits holds them all (usually one).
	Party PartyID
	// Culprits are all the parties the protocol blamed.
	Culprits []PartyID
	// Protocol is the sub-protocol that aborted.
	Protocol Protocol
	// Reason describes the failed check; it never holds secret material.
	Reason string
	// Err is the library's error, if any.
	Err error
}

// Error implements error.
func (e *AbortError) Error() string {
	return fmt.Sprintf("mpc: %s aborted by misbehaving party %q: %s", e.Protocol, e.Party, e.Reason)
}

// Unwrap returns the library's error.
func (e *AbortError) Unwrap() error { return e.Err }

// PeerAbortError is the terminal error of a session that a peer declared
// failed with an abort notice. The sender is not blamed by it: Culprits are
// the parties the sender's own session blamed.
type PeerAbortError struct {
	// Party is the peer that sent the abort notice.
	Party PartyID
	// Culprits are the parties that the peer blamed, possibly none.
	Culprits []PartyID
	// Protocol is the sub-protocol that aborted.
	Protocol Protocol
}

// Error implements error.
func (e *PeerAbortError) Error() string {
	return fmt.Sprintf("mpc: %s aborted by peer %q (it blamed %v)", e.Protocol, e.Party, e.Culprits)
}
