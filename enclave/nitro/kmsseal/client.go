//go:build nitro

package kmsseal

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// ClientConfig configures the KMS client NewClient builds.
type ClientConfig struct {
	// Region is the KMS key's region, such as "eu-west-1".
	Region string
	// Endpoint is the KMS endpoint URL; empty means
	// https://kms.REGION.amazonaws.com. It names the TLS server, whatever
	// Dial connects to.
	Endpoint string
	// Dial opens the connection to the endpoint. In an enclave it dials
	// the parent's vsock proxy, which forwards to KMS; nil means an
	// ordinary TCP dial of the endpoint.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs verify KMS's TLS certificate; nil means the system roots,
	// which the enclave image must contain.
	RootCAs *x509.CertPool
	// Credentials sign the requests (the parent instance's role). They
	// authorise the call; the attestation document is what releases the
	// key.
	Credentials aws.CredentialsProvider
	// Timeout bounds each HTTP request; zero means 30 seconds.
	Timeout time.Duration
}

// Validate reports every problem with c at once, or nil.
func (c ClientConfig) Validate() error {
	var errs []error
	if c.Region == "" {
		errs = append(errs, errors.New("kmsseal: Region is empty"))
	}
	if c.Endpoint != "" && !strings.HasPrefix(c.Endpoint, "https://") {
		errs = append(errs, fmt.Errorf("kmsseal: Endpoint %q is not https: TLS must end inside the enclave", c.Endpoint))
	}
	if c.Credentials == nil {
		errs = append(errs, errors.New("kmsseal: Credentials is nil"))
	}
	return errors.Join(errs...)
}

// NewClient returns a KMS client for an enclave: TLS 1.2 or later to the
// endpoint's host name, over connections that Dial opens.
func NewClient(c ClientConfig) (*kms.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	dial := c.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: timeout}).DialContext
	}
	transport := &http.Transport{
		DialContext:         dial,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.RootCAs},
		TLSHandshakeTimeout: timeout,
		MaxIdleConns:        2,
		IdleConnTimeout:     time.Minute,
	}
	opts := kms.Options{
		Region:      c.Region,
		Credentials: aws.NewCredentialsCache(c.Credentials),
		HTTPClient:  &http.Client{Transport: transport, Timeout: timeout},
	}
	if c.Endpoint != "" {
		opts.BaseEndpoint = aws.String(c.Endpoint)
	}
	return kms.New(opts), nil
}
