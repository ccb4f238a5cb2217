package mpc

import (
	"errors"
	"fmt"
	"log/slog"
)

// Config configures an Engine.
type Config struct {
	// MaxPayloadBytes bounds the payload of an incoming envelope. The largest
	// CMP message, a keygen round with the Paillier proofs, is about 85 KB;
	// presign and sign messages stay under 12 KB (three parties).
	MaxPayloadBytes int
	// Logger receives the engine's logs; nil discards them. Logs never hold
	// secret material.
	Logger *slog.Logger
}

// DefaultConfig returns the default configuration: a 1 MiB payload limit.
func DefaultConfig() Config {
	return Config{MaxPayloadBytes: 1 << 20}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.MaxPayloadBytes < 1<<10 || c.MaxPayloadBytes > MaxEnvelopeSize {
		errs = append(errs, fmt.Errorf("mpc: MaxPayloadBytes must be %d to %d, got %d", 1<<10, MaxEnvelopeSize, c.MaxPayloadBytes))
	}
	return errors.Join(errs...)
}

// Engine creates MPC sessions. Each session runs the library's CPU-heavy
// steps (prime sampling, proofs) on the goroutine that calls it, never on
// the library's worker pool (multi-party-sig pkg/pool), which cannot be used
// safely: a worker that reports a result after the pool's caller has already
// counted the last one blocks for ever on a channel nobody reads any more,
// and once no worker is left the pool's next call blocks for ever too. That
// happens with a pool of any size, more often on a loaded machine, and the
// session would hang inside Accept, holding its lock, out of the caller's
// reach. Callers bound CPU use by how many sessions they run at once.
//
// An Engine holds configuration and a bounded cache of
// BIP-32 derivations (public data only); one Engine serves any number of
// concurrent sessions and is safe for concurrent use.
type Engine struct {
	cfg         Config
	log         *slog.Logger
	derivations derivationCache
}

// New returns an Engine for cfg.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, log: log}, nil
}
