package mpc

import (
	"errors"
	"fmt"
	"log/slog"
)

// Config configures an Engine.
type Config struct {
	// Parallelism is the number of worker goroutines that each session may
	// use for its CPU-heavy steps (prime sampling, proofs). Each session owns
	// its workers, never shares them, and stops them when it finishes or is
	// closed. 1 runs everything on the goroutine that calls the session.
	Parallelism int
	// MaxPayloadBytes bounds the payload of an incoming envelope. The largest
	// CMP message, a keygen round with the Paillier proofs, is about 85 KB;
	// presign and sign messages stay under 12 KB (three parties).
	MaxPayloadBytes int
	// Logger receives the engine's logs; nil discards them. Logs never hold
	// secret material.
	Logger *slog.Logger
}

// DefaultConfig returns the default configuration: two workers per session
// and a 1 MiB payload limit.
func DefaultConfig() Config {
	return Config{
		Parallelism:     2,
		MaxPayloadBytes: 1 << 20,
	}
}

// MaxParallelism bounds Config.Parallelism.
const MaxParallelism = 256

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Parallelism < 1 || c.Parallelism > MaxParallelism {
		errs = append(errs, fmt.Errorf("mpc: Parallelism must be 1 to %d, got %d", MaxParallelism, c.Parallelism))
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
