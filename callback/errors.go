package callback

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns for a failed callback
// wraps exactly one of them, so callers match with errors.Is. None of them
// is ever returned together with an approving Decision.
var (
	// ErrInvalidConfig is returned by the Validate methods and the
	// constructors when a configuration is unusable. The wrapped message
	// lists every problem.
	ErrInvalidConfig = errors.New("callback: invalid config")

	// ErrInvalidRequest is returned when a request misses a field the
	// protocol needs (requestId, a known config-change type) or holds a
	// value JSON cannot carry.
	ErrInvalidRequest = errors.New("callback: invalid request")

	// ErrKey is returned when a key is malformed or of a type or size this
	// package does not accept (RSA of at least 2048 bits, or ECDSA P-256
	// for a handler key).
	ErrKey = errors.New("callback: unsupported or malformed key")

	// ErrMalformed is returned when a token is not a well-formed JWT or its
	// claims cannot be decoded.
	ErrMalformed = errors.New("callback: malformed token")

	// ErrAlgorithm is returned when a token's alg is not the one that
	// matches the verifying key: none, HS* and any mismatch between RS256
	// and ES256 are all refused.
	ErrAlgorithm = errors.New("callback: token algorithm not accepted")

	// ErrBadSignature is returned when a token's signature does not verify
	// against the configured key.
	ErrBadSignature = errors.New("callback: bad token signature")

	// ErrExpired is returned when a token's exp is past.
	ErrExpired = errors.New("callback: token expired")

	// ErrNotYetValid is returned when a token's iat or nbf lies in the
	// future, beyond the allowed clock skew.
	ErrNotYetValid = errors.New("callback: token not yet valid")

	// ErrStaleResponse is returned when a response carries no iat (and
	// Config.AllowAnswersWithoutIAT is off) or its iat is older than
	// Config.MaxAnswerAge: an answer recorded earlier, played back.
	ErrStaleResponse = errors.New("callback: response too old or without iat")

	// ErrUnboundResponse is returned when a response's requestTokenHash is
	// not the hash of the request token it answers, or when it carries none
	// and Config.RequireRequestTokenHash is on: the answer may have been
	// given to another request with the same requestId.
	ErrUnboundResponse = errors.New("callback: response not bound to this request token")

	// ErrRequestIDMismatch is returned when a response's requestId differs
	// from the request's.
	ErrRequestIDMismatch = errors.New("callback: response requestId does not match the request")

	// ErrBadAction is returned when a response's action is missing,
	// unknown, or not allowed for the request's kind (IGNORE for a
	// transaction).
	ErrBadAction = errors.New("callback: response action not allowed")

	// ErrTimeout is returned when the handler did not answer within
	// Config.Timeout, or before the caller's context deadline.
	ErrTimeout = errors.New("callback: handler did not answer in time")

	// ErrUnreachable is returned when the handler cannot be reached: a
	// refused connection, a DNS or TLS failure, a connection cut short.
	ErrUnreachable = errors.New("callback: handler unreachable")

	// ErrHTTPStatus is returned, inside a *StatusError, when the handler
	// answers with an HTTP status other than 200.
	ErrHTTPStatus = errors.New("callback: handler answered an HTTP error")

	// ErrResponseTooLarge is returned when a response body exceeds
	// MaxResponseBytes.
	ErrResponseTooLarge = errors.New("callback: response too large")

	// ErrRetryRequested is wrapped in the error a retry loop (the node's
	// callback actor) reports when the retry budget ran out and the
	// handler's last answer was RETRY.
	ErrRetryRequested = errors.New("callback: handler answered RETRY")

	// ErrBudgetExhausted is reported by a retry loop (the node's callback
	// actor) when every attempt the Backoff allows has been made without
	// a final answer. The error also wraps the last attempt's failure.
	ErrBudgetExhausted = errors.New("callback: retry budget exhausted")
)

// StatusError is the failure of an attempt that the handler answered with
// an HTTP status other than 200. It wraps ErrHTTPStatus; match it with
// errors.As to tell a redirect from an error status.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
}

// Error names the status and, for a redirect, says it was not followed.
func (e *StatusError) Error() string {
	if e.Redirect() {
		return fmt.Sprintf("%v: status %d, a redirect, which is not followed", ErrHTTPStatus, e.Code)
	}
	return fmt.Sprintf("%v: status %d", ErrHTTPStatus, e.Code)
}

// Unwrap returns ErrHTTPStatus.
func (e *StatusError) Unwrap() error { return ErrHTTPStatus }

// Redirect reports whether the status is a redirect (3xx). The Client
// never follows one: a signed request goes to the configured handler only.
func (e *StatusError) Redirect() bool { return e.Code >= 300 && e.Code < 400 }

// Retryable reports whether err is a transient failure of one attempt
// after which asking again may succeed: a timeout, an unreachable handler,
// an HTTP error status or an oversized response. Verification failures
// (signature, algorithm, expiry, age, requestId, request token hash,
// action) are not retryable: the handler or its configuration is wrong, or
// the answer was replayed, and the request fails.
func Retryable(err error) bool {
	return errors.Is(err, ErrTimeout) ||
		errors.Is(err, ErrUnreachable) ||
		errors.Is(err, ErrHTTPStatus) ||
		errors.Is(err, ErrResponseTooLarge)
}
