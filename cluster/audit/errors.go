package audit

import (
	"errors"
	"fmt"
)

// Errors returned by the package.
var (
	// ErrBrokenLink is returned (wrapped in a *BrokenLinkError) when a
	// run of entries does not follow from its anchor: a gap or repeat in
	// the numbering, or a hash that does not match the entry.
	ErrBrokenLink = errors.New("audit: broken chain")
	// ErrTruncate is returned when a truncation names an entry the chain
	// does not retain, or with a hash that is not that entry's.
	ErrTruncate = errors.New("audit: truncation refused")
	// ErrSegment is returned when a segment file is not one this package
	// writes: a bad header, a line that does not decode, or one too long.
	ErrSegment = errors.New("audit: malformed segment")
)

// BrokenLinkError names the first entry of a run that does not follow
// from the one before it (or from the anchor). It wraps ErrBrokenLink.
type BrokenLinkError struct {
	// Seq is the sequence number of the first broken entry: the one the
	// verifier expected at that place when the numbering broke, else the
	// entry whose hash does not match.
	Seq uint64
	// Why says what is wrong.
	Why string
}

func (e *BrokenLinkError) Error() string {
	return fmt.Sprintf("audit: broken chain at entry %d: %s", e.Seq, e.Why)
}

// Unwrap returns ErrBrokenLink.
func (e *BrokenLinkError) Unwrap() error { return ErrBrokenLink }
