// Package gcsfiles keeps a Confidential Space node's few lasting files in
// a Cloud Storage bucket: a Confidential Space workload has no disk that
// outlives its VM (the launcher mounts tmpfs only), so the node keeps
// there what it needs to come back as the same member, its sealed store
// and its data key file, which are sealed or Cloud KMS ciphertext. It
// calls the Cloud Storage JSON API with net/http alone, authorised by the
// workload's federated access token (kmsseal.AccessToken): only a
// workload whose attestation passes the provider's attribute condition
// reads or writes them.
package gcsfiles

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// DefaultEndpoint is Cloud Storage's JSON API.
const DefaultEndpoint = "https://storage.googleapis.com"

// MaxFileBytes bounds one file read back.
const MaxFileBytes = 16 << 20

// bucketRE is a Cloud Storage bucket name without dots.
var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$`)

// ErrRefused is returned when Cloud Storage refuses the workload's token
// (401 or 403): its attestation does not pass the attribute condition, or
// the principal lacks a role on the bucket.
var ErrRefused = errors.New("gcsfiles: Cloud Storage refused the workload")

// Config configures New.
type Config struct {
	// Bucket is the bucket that holds the files.
	Bucket string
	// Prefix is put before each file's name, such as "n3/".
	Prefix string
	// Endpoint is the JSON API's base URL (https).
	Endpoint string
	// Token returns a federated access token for each call.
	Token func(context.Context) (string, error)
	// HTTPClient calls Cloud Storage.
	HTTPClient *http.Client
}

// Validate reports every problem with c at once, or nil.
func (c Config) Validate() error {
	var errs []error
	if !bucketRE.MatchString(c.Bucket) {
		errs = append(errs, fmt.Errorf("gcsfiles: bucket %q is not a bucket name (lower case, digits, - and _, 3 to 63)", c.Bucket))
	}
	if strings.Contains(c.Prefix, "..") || strings.HasPrefix(c.Prefix, "/") {
		errs = append(errs, fmt.Errorf("gcsfiles: prefix %q must be a relative object name", c.Prefix))
	}
	if !strings.HasPrefix(c.Endpoint, "https://") {
		errs = append(errs, fmt.Errorf("gcsfiles: endpoint %q is not https", c.Endpoint))
	}
	if c.Token == nil || c.HTTPClient == nil {
		errs = append(errs, errors.New("gcsfiles: Token or HTTPClient is nil"))
	}
	return errors.Join(errs...)
}

// Files reads and writes the node's files as objects. It is safe for
// concurrent use.
type Files struct {
	cfg Config
}

// New returns the Files cfg describes, or cfg.Validate's error.
func New(cfg Config) (*Files, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Endpoint = strings.TrimSuffix(cfg.Endpoint, "/")
	return &Files{cfg: cfg}, nil
}

// Get returns the object of name; for a missing one the error is an
// fs.ErrNotExist.
func (f *Files) Get(ctx context.Context, name string) ([]byte, error) {
	u := fmt.Sprintf("%s/storage/v1/b/%s/o/%s?alt=media", f.cfg.Endpoint, f.cfg.Bucket, url.PathEscape(f.cfg.Prefix+name))
	resp, err := f.do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		b, err := io.ReadAll(io.LimitReader(resp.Body, MaxFileBytes+1))
		if err != nil {
			return nil, fmt.Errorf("gcsfiles: get %s: %w", name, err)
		}
		if len(b) > MaxFileBytes {
			return nil, fmt.Errorf("gcsfiles: get %s: over %d bytes", name, MaxFileBytes)
		}
		return b, nil
	case http.StatusNotFound:
		return nil, fmt.Errorf("gcsfiles: %s in bucket %s: %w", name, f.cfg.Bucket, fs.ErrNotExist)
	}
	return nil, f.failed("get", name, resp)
}

// Put replaces the object of name with data.
func (f *Files) Put(ctx context.Context, name string, data []byte) error {
	u := fmt.Sprintf("%s/upload/storage/v1/b/%s/o?uploadType=media&name=%s", f.cfg.Endpoint, f.cfg.Bucket, url.QueryEscape(f.cfg.Prefix+name))
	resp, err := f.do(ctx, http.MethodPost, u, data)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return f.failed("put", name, resp)
	}
	return nil
}

func (f *Files) do(ctx context.Context, method, u string, body []byte) (*http.Response, error) {
	token, err := f.cfg.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("gcsfiles: access token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := f.cfg.HTTPClient.Do(req)
	if err != nil {
		// The URL holds no secret; the token travels in a header.
		return nil, fmt.Errorf("gcsfiles: %s %s: %w", method, f.cfg.Bucket, err)
	}
	return resp, nil
}

// failed describes an unexpected answer; the body is the service's error,
// which names resources, never tokens.
func (f *Files) failed(what, name string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%w: %s %s: %s: %s", ErrRefused, what, name, resp.Status, bytes.TrimSpace(b))
	}
	return fmt.Errorf("gcsfiles: %s %s: %s: %s", what, name, resp.Status, bytes.TrimSpace(b))
}
