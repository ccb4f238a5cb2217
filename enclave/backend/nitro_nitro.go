//go:build nitro

package backend

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/nitro"
	"github.com/coterie-mpc/coterie/enclave/nitro/imds"
	"github.com/coterie-mpc/coterie/enclave/nitro/kmsseal"
	"github.com/coterie-mpc/coterie/enclave/nitro/nsm"
	"github.com/coterie-mpc/coterie/enclave/nitro/vsock"
)

const nitroAvailable = true

var nitroDataFiles = []string{kmsseal.FileName}

// nitroOpenTimeout bounds the KMS and IMDS calls of a start.
const nitroOpenTimeout = time.Minute

// newNitro opens the NSM, gets the data key from KMS through the parent's
// vsock proxies, and returns the enclave.
func newNitro(cfg Config) (enclave.Enclave, error) {
	if err := cfg.Nitro.Validate(); err != nil {
		return nil, fmt.Errorf("backend: nitro: %w", err)
	}
	ncfg := nitro.DefaultConfig()
	if cfg.Clock != nil {
		ncfg.Clock = cfg.Clock
	}
	v, err := nitro.New(ncfg)
	if err != nil {
		return nil, err
	}
	att, closeNSM, err := nsm.Open(v)
	if err != nil {
		return nil, err
	}
	e, err := openNitro(cfg, att)
	if err != nil {
		closeNSM()
		return nil, err
	}
	return e, nil
}

func openNitro(cfg Config, att *nsm.Attester) (enclave.Enclave, error) {
	self, err := att.Self()
	if err != nil {
		return nil, err
	}
	kmsCID, kmsPort, _ := parseVsock(cfg.Nitro.KMSProxy) // Validate checked both
	imdsCID, imdsPort, _ := parseVsock(cfg.Nitro.IMDSProxy)
	client, err := kmsseal.NewClient(kmsseal.ClientConfig{
		Region:      cfg.Nitro.Region,
		Endpoint:    cfg.Nitro.KMSEndpoint,
		Dial:        vsockDialer(vsock.Addr{CID: kmsCID, Port: kmsPort}),
		Credentials: imds.New(imds.Endpoint, vsockDialer(vsock.Addr{CID: imdsCID, Port: imdsPort})),
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), nitroOpenTimeout)
	defer cancel()
	s, err := kmsseal.Open(ctx, kmsseal.Config{
		KMS: client, KeyID: cfg.Nitro.KeyID, KeyPolicy: cfg.KeyPolicy, Documents: att, AllowDebug: cfg.AllowDebug,
		DataKeyFile: filepath.Join(cfg.DataDir, kmsseal.FileName), Create: cfg.Initialize, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	return &nitroEnclave{Sealer: s, Attester: att, self: self}, nil
}

// vsockDialer dials a whatever address the HTTP client asks for: the
// proxy forwards to one fixed host, and TLS still checks that host's name.
func vsockDialer(a vsock.Addr) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) { return vsock.Dial(ctx, a) }
}

// nitroEnclave is the Nitro backend: KMS sealing and NSM attestation.
type nitroEnclave struct {
	*kmsseal.Sealer
	*nsm.Attester
	self enclave.Identity
}

var _ enclave.Enclave = (*nitroEnclave)(nil)

func (e *nitroEnclave) Kind() enclave.Kind     { return enclave.KindNitro }
func (e *nitroEnclave) Self() enclave.Identity { return e.self }
