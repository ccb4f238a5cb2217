//go:build gcpcs

package backend

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/gcpcs"
	"github.com/coterie-mpc/coterie/enclave/gcpcs/gcsfiles"
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

// csSealConfig returns the kmsseal configuration of cfg's Confidential
// Space sealing, with tokens from the launcher.
func (cfg Config) csSealConfig() kmsseal.Config {
	cs := cfg.ConfidentialSpaceSealing
	socket := cs.LauncherSocket
	if socket == "" {
		socket = gcpcs.DefaultLauncherSocket
	}
	scfg := kmsseal.DefaultConfig()
	scfg.Tokens, scfg.Provider, scfg.KeyName = gcpcs.NewLauncher(socket), cs.WorkloadIdentityProvider, cs.KeyName()
	if cs.STSEndpoint != "" {
		scfg.STSEndpoint = cs.STSEndpoint
	}
	if cs.KMSEndpoint != "" {
		scfg.KMSEndpoint = cs.KMSEndpoint
	}
	if cfg.ConfidentialSpace != nil && cfg.ConfidentialSpace.HTTPClient != nil {
		scfg.HTTPClient = cfg.ConfidentialSpace.HTTPClient
	}
	scfg.KeyPolicy, scfg.DataKeyFile = cfg.KeyPolicy, filepath.Join(cfg.DataDir, kmsseal.FileName)
	scfg.Create, scfg.Logger = cfg.Initialize, cfg.Logger
	return scfg
}

// ConfidentialSpaceFiles returns the Cloud Storage client with which a
// Confidential Space node keeps its lasting files in bucket, under prefix:
// its VM's disk does not outlive it. Its calls carry the workload's
// federated access token, as its Cloud KMS calls do.
func ConfidentialSpaceFiles(cfg Config, bucket, prefix string) (Files, error) {
	if err := cfg.ConfidentialSpaceSealing.Validate(); err != nil {
		return nil, fmt.Errorf("backend: confidential-space: %w", err)
	}
	scfg := cfg.csSealConfig()
	endpoint := cfg.ConfidentialSpaceSealing.StorageEndpoint
	if endpoint == "" {
		endpoint = gcsfiles.DefaultEndpoint
	}
	return gcsfiles.New(gcsfiles.Config{
		Bucket: bucket, Prefix: prefix, Endpoint: endpoint, HTTPClient: scfg.HTTPClient,
		Token: func(ctx context.Context) (string, error) { return kmsseal.AccessToken(ctx, scfg) },
	})
}
