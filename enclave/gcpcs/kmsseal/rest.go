package kmsseal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/coterie-mpc/coterie/enclave/internal/dataseal"
)

// Google's endpoints, the defaults of Config.
const (
	// DefaultSTSEndpoint is the Security Token Service's token exchange.
	DefaultSTSEndpoint = "https://sts.googleapis.com/v1/token"
	// DefaultKMSEndpoint is Cloud KMS's REST API.
	DefaultKMSEndpoint = "https://cloudkms.googleapis.com"
)

// The token exchange of RFC 8693 as STS takes it: the attestation token is
// an OIDC JWT of the workload identity provider's issuer.
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeJWT       = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
	scopeCloudPlatform = "https://www.googleapis.com/auth/cloud-platform"
)

// maxAnswer bounds what Open reads of an STS or Cloud KMS answer.
const maxAnswer = 64 << 10

// castagnoli is the CRC32C table of Cloud KMS's integrity fields.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) int64 { return int64(crc32.Checksum(b, castagnoli)) }

// rest calls STS and Cloud KMS with plain HTTPS and JSON.
type rest struct {
	client *http.Client
	sts    string
	kms    string
}

// exchange trades the attestation token for a federated access token.
func (r rest) exchange(ctx context.Context, provider, subjectToken string) (string, error) {
	form := url.Values{
		"grant_type":           {grantTokenExchange},
		"audience":             {provider},
		"scope":                {scopeCloudPlatform},
		"requested_token_type": {tokenTypeAccess},
		"subject_token":        {subjectToken},
		"subject_token_type":   {tokenTypeJWT},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.sts, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := r.do(req, "STS token exchange", &out); err != nil {
		return "", err
	}
	if out.AccessToken == "" || !strings.EqualFold(out.TokenType, "Bearer") {
		return "", fmt.Errorf("%w: STS answered no bearer access token", ErrBadResponse)
	}
	return out.AccessToken, nil
}

// encryptRequest and the types below are Cloud KMS's REST messages; bytes
// travel as base64, int64 checksums as decimal strings.
type encryptRequest struct {
	Plaintext       []byte `json:"plaintext"`
	AAD             []byte `json:"additionalAuthenticatedData"`
	PlaintextCRC32C int64  `json:"plaintextCrc32c,string"`
	AADCRC32C       int64  `json:"additionalAuthenticatedDataCrc32c,string"`
}

type encryptResponse struct {
	Name             string `json:"name"`
	Ciphertext       []byte `json:"ciphertext"`
	CiphertextCRC32C int64  `json:"ciphertextCrc32c,string"`
	VerifiedPlain    bool   `json:"verifiedPlaintextCrc32c"`
	VerifiedAAD      bool   `json:"verifiedAdditionalAuthenticatedDataCrc32c"`
}

type decryptRequest struct {
	Ciphertext       []byte `json:"ciphertext"`
	AAD              []byte `json:"additionalAuthenticatedData"`
	CiphertextCRC32C int64  `json:"ciphertextCrc32c,string"`
	AADCRC32C        int64  `json:"additionalAuthenticatedDataCrc32c,string"`
}

type decryptResponse struct {
	Plaintext       []byte `json:"plaintext"`
	PlaintextCRC32C int64  `json:"plaintextCrc32c,string"`
}

// encrypt returns Cloud KMS's encryption of plaintext under keyName's
// primary version, checking both ways' CRC32C.
func (r rest) encrypt(ctx context.Context, accessToken, keyName string, plaintext, aad []byte) ([]byte, error) {
	in := encryptRequest{Plaintext: plaintext, AAD: aad, PlaintextCRC32C: crc32c(plaintext), AADCRC32C: crc32c(aad)}
	var out encryptResponse
	if err := r.kmsCall(ctx, accessToken, keyName, "encrypt", in, &out); err != nil {
		return nil, err
	}
	switch {
	case !out.VerifiedPlain || !out.VerifiedAAD:
		return nil, fmt.Errorf("%w: Cloud KMS encrypt did not verify the request's checksums", ErrBadResponse)
	case len(out.Ciphertext) == 0 || len(out.Ciphertext) > dataseal.MaxCiphertext || crc32c(out.Ciphertext) != out.CiphertextCRC32C:
		return nil, fmt.Errorf("%w: Cloud KMS encrypt answered a ciphertext that is empty, too long or fails its CRC32C", ErrBadResponse)
	case !strings.HasPrefix(out.Name, keyName+"/cryptoKeyVersions/"):
		return nil, fmt.Errorf("%w: Cloud KMS encrypt used %q, not a version of %s", ErrBadResponse, out.Name, keyName)
	}
	return out.Ciphertext, nil
}

// decrypt returns Cloud KMS's decryption of ciphertext with keyName. The
// caller owns, and clears, the result.
func (r rest) decrypt(ctx context.Context, accessToken, keyName string, ciphertext, aad []byte) ([]byte, error) {
	in := decryptRequest{Ciphertext: ciphertext, AAD: aad, CiphertextCRC32C: crc32c(ciphertext), AADCRC32C: crc32c(aad)}
	var out decryptResponse
	if err := r.kmsCall(ctx, accessToken, keyName, "decrypt", in, &out); err != nil {
		return nil, err
	}
	if crc32c(out.Plaintext) != out.PlaintextCRC32C {
		clear(out.Plaintext)
		return nil, fmt.Errorf("%w: Cloud KMS decrypt answered a plaintext that fails its CRC32C", ErrBadResponse)
	}
	return out.Plaintext, nil
}

// kmsCall posts in to {kms}/v1/{keyName}:{method} with the access token.
func (r rest) kmsCall(ctx context.Context, accessToken, keyName, method string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.kms+"/v1/"+keyName+":"+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+accessToken)
	return r.do(req, "Cloud KMS "+method, out)
}

// do sends req and decodes a 200 answer into out. A 4xx answer (but 429)
// is ErrKeyRefused with the service's error code and message, which name
// resources and conditions, never tokens; other failures may pass on a
// later start.
func (r rest) do(req *http.Request, what string, out any) error {
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("kmsseal: %s: %w", what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("kmsseal: %s: %w", what, err)
	}
	if resp.StatusCode != http.StatusOK {
		reason := errorReason(body)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			return fmt.Errorf("%w: %s: %s: %s", ErrKeyRefused, what, resp.Status, reason)
		}
		return fmt.Errorf("kmsseal: %s: %s: %s", what, resp.Status, reason)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadResponse, what, err)
	}
	return nil
}

// maxReason bounds the service's message quoted in an error.
const maxReason = 300

// errorReason reads an OAuth error ({"error": "...", "error_description":
// "..."}, as STS answers) or a Google API error ({"error": {"status":
// "...", "message": "..."}}).
func errorReason(body []byte) string {
	var e struct {
		Error       json.RawMessage `json:"error"`
		Description string          `json:"error_description"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "no error details"
	}
	var code string
	if json.Unmarshal(e.Error, &code) != nil {
		var api struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(e.Error, &api)
		code, e.Description = api.Status, api.Message
	}
	reason := code + ": " + e.Description
	if len(reason) > maxReason {
		reason = reason[:maxReason] + "…"
	}
	return reason
}
