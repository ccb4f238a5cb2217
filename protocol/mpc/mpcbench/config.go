package mpcbench

import (
	"errors"
	"fmt"

	"github.com/coterie-mpc/coterie/clock"
)

// Limits of Config.
const (
	// MinParties and MaxParties bound Config.Parties: the 2-of-2 and 3-of-3
	// setups that the co-signer runs.
	MinParties = 2
	MaxParties = 3
	// MaxPresigns bounds Config.Presigns. A 2-of-2 presignature costs about
	// 3 CPU-seconds, so the bound keeps one run under a few minutes.
	MaxPresigns = 100
)

// Sentinel errors.
var (
	// ErrConfig is returned by Config.Validate and Measure for a config
	// that cannot run; the error lists every problem.
	ErrConfig = errors.New("mpcbench: bad config")
	// ErrStalled is returned when the sessions of a run stop sending
	// messages before every one is done, or are still exchanging them after
	// far more passes than the protocol has rounds.
	ErrStalled = errors.New("mpcbench: sessions stalled")
)

// Config says what Measure runs.
type Config struct {
	// Parties is the number of parties, MinParties to MaxParties. Every
	// party holds a share of the key and every party signs: the key is
	// Parties-of-Parties, CMP threshold Parties-1 (the threshold counts the
	// corrupt parties the key tolerates, and threshold+1 parties sign).
	Parties int
	// Presigns is the number of presign sessions, run one after another, 1
	// to MaxPresigns. Each presignature then serves one online round.
	Presigns int
	// Clock times the sessions.
	Clock clock.Clock
}

// DefaultConfig returns a 2-of-2 run of three presignatures, the bench's
// default cluster.
func DefaultConfig() Config {
	return Config{Parties: 2, Presigns: 3, Clock: clock.Real()}
}

// Validate reports every problem of c at once, wrapped in ErrConfig.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Parties < MinParties || c.Parties > MaxParties {
		bad("Parties is %d, want %d to %d", c.Parties, MinParties, MaxParties)
	}
	if c.Presigns < 1 || c.Presigns > MaxPresigns {
		bad("Presigns is %d, want 1 to %d", c.Presigns, MaxPresigns)
	}
	if c.Clock == nil {
		bad("Clock is nil")
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}
