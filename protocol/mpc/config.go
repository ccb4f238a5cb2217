package mpc

import (
	"errors"
	"fmt"
	"log/slog"
)

// Config configures an Engine.
type Config struct {
	// Parallelism is the number of goroutines that each session may use for
	// its CPU-heavy steps (prime sampling, proofs). It must be 1: every step
	// runs on the goroutine that calls the session. The library's worker
	// pool (multi-party-sig pkg/pool) cannot be used safely: a worker that
	// reports a result after the pool's caller has already counted the last
	// one blocks for ever on a channel that nobody reads any more, and once
	// no worker is left the pool's next call blocks for ever too. That
	// happens with a pool of any size, more often on a loaded machine; the
	// session then hangs inside Accept, holding its lock, out of reach of
	// the caller's timeout. The parties of a session still run in parallel.
	Parallelism int
	// MaxPayloadBytes bounds the payload of an incoming envelope. The largest
	// CMP message, a keygen round with the Paillier proofs, is about 85 KB;
	// presign and sign messages stay under 12 KB (three parties).
	MaxPayloadBytes int
	// Logger receives the engine's logs; nil discards them. Logs never hold
	// secret material.
	Logger *slog.Logger
}

// DefaultConfig returns the default configuration: no workers besides the
// caller's goroutine, and a 1 MiB payload limit.
func DefaultConfig() Config {
	return Config{
		Parallelism:     1,
		MaxPayloadBytes: 1 << 20,
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Parallelism != 1 {
		errs = append(errs, fmt.Errorf("mpc: Parallelism must be 1 (the library's worker pool can deadlock), got %d", c.Parallelism))
	}
	if c.MaxPayloadBytes < 1<<10 || c.MaxPayloadBytes > MaxEnvelopeSize {
		errs = append(errs, fmt.Errorf("mpc: MaxPayloadBytes must be %d to %d, got %d", 1<<10, MaxEnvelopeSize, c.MaxPayloadBytes))
	}
	return errors.Join(errs...)
}

// Engine creates MPC sessions. It holds configuration and a bounded cache of
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
