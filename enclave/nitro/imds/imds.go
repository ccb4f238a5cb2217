//go:build nitro

package imds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// ErrNoCredentials is returned when IMDS does not give role credentials:
// the instance has no role, or IMDS answered with an error.
var ErrNoCredentials = errors.New("imds: no role credentials from the instance metadata service")

// Endpoint is the metadata service's base URL.
const Endpoint = "http://169.254.169.254"

const (
	tokenTTL     = "21600" // seconds; IMDSv2's maximum
	maxBody      = 64 << 10
	credsPath    = "/latest/meta-data/iam/security-credentials/"
	tokenPath    = "/latest/api/token"
	tokenTTLHdr  = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	tokenHdr     = "X-Aws-Ec2-Metadata-Token"
	requestLimit = 10 * time.Second
)

// Provider fetches role credentials from IMDS.
type Provider struct {
	endpoint string
	client   *http.Client
}

var _ aws.CredentialsProvider = (*Provider)(nil)

// New returns a Provider for the metadata service at endpoint (Endpoint
// in production), whose connections dial opens (a vsock dialer in an
// enclave; nil means TCP).
func New(endpoint string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *Provider {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return &Provider{
		endpoint: strings.TrimSuffix(endpoint, "/"),
		client:   &http.Client{Timeout: requestLimit, Transport: &http.Transport{DialContext: dial, Proxy: nil}},
	}
}

// credentials is the metadata service's answer for a role.
type credentials struct {
	Code            string
	AccessKeyId     string
	SecretAccessKey string
	Token           string
	Expiration      time.Time
}

// Retrieve implements aws.CredentialsProvider.
func (p *Provider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	token, err := p.get(ctx, http.MethodPut, tokenPath, tokenTTLHdr, tokenTTL)
	if err != nil {
		return aws.Credentials{}, err
	}
	roles, err := p.get(ctx, http.MethodGet, credsPath, tokenHdr, string(token))
	if err != nil {
		return aws.Credentials{}, err
	}
	role, _, _ := strings.Cut(strings.TrimSpace(string(roles)), "\n")
	if role == "" || strings.ContainsAny(role, "/?#") {
		return aws.Credentials{}, fmt.Errorf("%w: the instance has no IAM role", ErrNoCredentials)
	}
	body, err := p.get(ctx, http.MethodGet, credsPath+role, tokenHdr, string(token))
	if err != nil {
		return aws.Credentials{}, err
	}
	var c credentials
	if err := json.Unmarshal(body, &c); err != nil {
		return aws.Credentials{}, fmt.Errorf("%w: role %s: malformed answer", ErrNoCredentials, role)
	}
	if c.Code != "Success" || c.AccessKeyId == "" || c.SecretAccessKey == "" {
		return aws.Credentials{}, fmt.Errorf("%w: role %s: code %q", ErrNoCredentials, role, c.Code)
	}
	return aws.Credentials{
		AccessKeyID: c.AccessKeyId, SecretAccessKey: c.SecretAccessKey, SessionToken: c.Token,
		Source: "imds", CanExpire: !c.Expiration.IsZero(), Expires: c.Expiration,
	}, nil
}

// get makes one request with one header and returns the body of a 200
// answer. Errors name the path, never a token or a key.
func (p *Provider) get(ctx context.Context, method, path, header, value string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.endpoint+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(header, value)
	res, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("imds: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("imds: %s %s: %w", method, path, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s %s: %s", ErrNoCredentials, method, path, res.Status)
	}
	return body, nil
}
