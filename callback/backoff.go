package callback

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Rand is a source of jitter. *rand.Rand of math/rand/v2 implements it.
type Rand interface {
	// Int64N returns a uniform number in [0, n); n > 0.
	Int64N(n int64) int64
}

// Backoff is the retry policy for RETRY answers and retryable errors: how
// many attempts a request gets and how long to wait between them.
//
// The delay after attempt n (counting from 1) is
// min(Initial·Multiplierⁿ⁻¹, Max), spread uniformly over ±Jitter of itself.
// Backoff is a value; Next is safe for concurrent use when Rand is (the
// default source is).
type Backoff struct {
	// MaxAttempts is the budget: how many attempts a request gets in
	// all, the first included. Default 20.
	MaxAttempts int
	// Initial is the delay after the first attempt. Default 3 minutes.
	Initial time.Duration
	// Max caps the delay before jitter. Default 3 minutes.
	Max time.Duration
	// Multiplier grows the delay after each attempt; 1 keeps it
	// constant. Default 1.
	Multiplier float64
	// Jitter is the fraction of the delay, in [0, 1), by which it is
	// spread at random so that many requests do not retry in step.
	// Default 0.1.
	Jitter float64
	// Rand is the jitter source. Nil uses math/rand/v2's global source.
	Rand Rand
}

// Backoff bounds, so that a misconfiguration cannot make a request retry
// for ever.
const (
	maxAttemptsLimit = 10000
	maxDelayLimit    = 24 * time.Hour
)

// DefaultBackoff returns the seed product's budget: 20 attempts, 3 minutes
// apart, with 10% jitter.
func DefaultBackoff() Backoff {
	return Backoff{
		MaxAttempts: 20,
		Initial:     3 * time.Minute,
		Max:         3 * time.Minute,
		Multiplier:  1,
		Jitter:      0.1,
	}
}

// Validate reports every problem of b at once, wrapped in
// ErrInvalidConfig.
func (b Backoff) Validate() error {
	if errs := b.problems(); len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

func (b Backoff) problems() []error {
	var errs []error
	if b.MaxAttempts < 1 || b.MaxAttempts > maxAttemptsLimit {
		errs = append(errs, fmt.Errorf("retry max attempts %d not in [1, %d]", b.MaxAttempts, maxAttemptsLimit))
	}
	if b.Initial <= 0 || b.Initial > maxDelayLimit {
		errs = append(errs, fmt.Errorf("retry initial delay %s not in (0, %s]", b.Initial, maxDelayLimit))
	}
	if b.Max < b.Initial || b.Max > maxDelayLimit {
		errs = append(errs, fmt.Errorf("retry max delay %s not in [initial, %s]", b.Max, maxDelayLimit))
	}
	if !(b.Multiplier >= 1 && b.Multiplier <= 100) {
		errs = append(errs, fmt.Errorf("retry multiplier %g not in [1, 100]", b.Multiplier))
	}
	if !(b.Jitter >= 0 && b.Jitter < 1) {
		errs = append(errs, fmt.Errorf("retry jitter %g not in [0, 1)", b.Jitter))
	}
	return errs
}

// Next returns the delay to wait after attempt number attempts (counting
// from 1) before the next one, and true; or 0 and false when attempts
// has used up the budget. It reads nothing but b and b.Rand, so an actor
// may call it inside Receive.
func (b Backoff) Next(attempts int) (time.Duration, bool) {
	if attempts < 1 {
		attempts = 1
	}
	if attempts >= b.MaxAttempts {
		return 0, false
	}
	d := float64(b.Initial)
	for i := 1; i < attempts && d < float64(b.Max); i++ {
		d *= b.Multiplier
	}
	d = min(d, float64(b.Max))
	if spread := int64(d * b.Jitter); spread > 0 {
		d += float64(b.int64n(2*spread+1) - spread)
	}
	return max(time.Duration(d), 0), true
}

func (b Backoff) int64n(n int64) int64 {
	if b.Rand != nil {
		return b.Rand.Int64N(n)
	}
	return rand.Int64N(n)
}
