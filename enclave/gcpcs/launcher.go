package gcpcs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/coterie-mpc/coterie/enclave"
)

// DefaultLauncherSocket is where the Confidential Space launcher serves its
// token API inside the workload's container.
const DefaultLauncherSocket = "/run/container_launcher/teeserver.sock"

// maxToken bounds the token the launcher returns.
const maxToken = 64 << 10

// TokenSource gets an attestation token for an audience and nonces. It is
// safe for concurrent use.
type TokenSource interface {
	// Token returns a signed token whose aud is audience and whose
	// eat_nonce holds nonces.
	Token(ctx context.Context, audience string, nonces []string) (string, error)
}

// Launcher is the TokenSource of a Confidential Space workload: the
// launcher's HTTP API on a unix socket.
type Launcher struct {
	client *http.Client
}

var _ TokenSource = (*Launcher)(nil)

// NewLauncher returns a Launcher that talks to the socket at path.
func NewLauncher(path string) *Launcher {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
	return &Launcher{client: &http.Client{Transport: &http.Transport{DialContext: dial}}}
}

// Token implements TokenSource with POST /v1/token, asking for an OIDC
// token.
func (l *Launcher) Token(ctx context.Context, audience string, nonces []string) (string, error) {
	body, err := json.Marshal(struct {
		Audience  string   `json:"audience"`
		TokenType string   `json:"token_type"`
		Nonces    []string `json:"nonces"`
	}{audience, "OIDC", nonces})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://localhost/v1/token", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("gcpcs: launcher: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxToken))
	if err != nil {
		return "", fmt.Errorf("gcpcs: launcher: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("gcpcs: launcher: %s", resp.Status)
	}
	token := strings.TrimSpace(string(b))
	if strings.Count(token, ".") != 2 {
		return "", errors.New("gcpcs: launcher: the answer is not a JWT")
	}
	return token, nil
}

// Attester is a Confidential Space workload's enclave.Attester: its
// evidence is a token from a TokenSource, and it verifies peers' evidence
// with its Verifier.
type Attester struct {
	enclave.Verifier
	source TokenSource
}

var _ enclave.Attester = (*Attester)(nil)

// NewAttester returns an Attester that gets tokens for Audience from
// source and verifies with v.
func NewAttester(source TokenSource, v enclave.Verifier) *Attester {
	return &Attester{Verifier: v, source: source}
}

// Kind returns enclave.KindConfidentialSpace.
func (a *Attester) Kind() enclave.Kind { return enclave.KindConfidentialSpace }

// Evidence implements enclave.Attester: a token whose nonces carry
// reportData.
func (a *Attester) Evidence(ctx context.Context, reportData []byte) ([]byte, error) {
	ns, err := Nonces(reportData)
	if err != nil {
		return nil, err
	}
	token, err := a.source.Token(ctx, Audience, ns)
	if err != nil {
		return nil, err
	}
	return enclave.AppendEvidence(nil, enclave.KindConfidentialSpace, []byte(token)), nil
}
