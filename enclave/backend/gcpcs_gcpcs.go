//go:build gcpcs

package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/gcpcs"
	"github.com/coterie-mpc/coterie/enclave/gcpcs/kmsseal"
)

const gcpcsAvailable = true

var gcpcsDataFiles = []string{kmsseal.FileName}

// gcpcsOpenTimeout bounds the launcher, STS and Cloud KMS calls of a start.
const gcpcsOpenTimeout = time.Minute

// newConfidentialSpace gets the data key from Cloud KMS with a launcher
// token exchanged at STS, and returns the enclave: tokens from the
// launcher as evidence, verified by the configured verifier.
func newConfidentialSpace(cfg Config) (enclave.Enclave, error) {
	cs := cfg.ConfidentialSpaceSealing
	if err := cs.Validate(); err != nil {
		return nil, fmt.Errorf("backend: confidential-space: %w", err)
	}
	gcfg := gcpcs.DefaultConfig()
	if cfg.ConfidentialSpace != nil {
		gcfg = *cfg.ConfidentialSpace
	}
	if cfg.Clock != nil {
		gcfg.Clock = cfg.Clock
	}
	v, err := gcpcs.New(gcfg)
	if err != nil {
		return nil, err
	}
	scfg := cfg.csSealConfig()
	ctx, cancel := context.WithTimeout(context.Background(), gcpcsOpenTimeout)
	defer cancel()
	s, err := kmsseal.Open(ctx, scfg)
	if err != nil {
		return nil, err
	}
	return &csEnclave{Sealer: s, Attester: gcpcs.NewAttester(scfg.Tokens, v)}, nil
}

// csEnclave is the Confidential Space backend: Cloud KMS sealing and
// launcher attestation.
type csEnclave struct {
	*kmsseal.Sealer
	*gcpcs.Attester
}

var _ enclave.Enclave = (*csEnclave)(nil)

func (e *csEnclave) Kind() enclave.Kind { return enclave.KindConfidentialSpace }
