// Package request validates what a workspace accepts from outside: the
// admin's transaction and config-change submissions, and the co-signer's
// completion, approval, rejection and failure reports. It also builds the
// digest of a transaction whose submission names none.
//
// Validation reports every problem at once, in one error that wraps
// ErrInvalid. The functions are pure and safe for concurrent use; they never
// modify their input.
package request
