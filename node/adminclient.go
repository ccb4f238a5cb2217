package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/internal/bridge"
)

// maxAdminAnswer bounds an answer the admin client reads.
const maxAdminAnswer = 4 << 20

// AdminClient talks to a running node's admin API: what `coterie node
// pair`, `node users`, `node print-public-key` and `node cluster` use, and
// `coterie bench` and `drill`. It is safe for concurrent use.
type AdminClient struct {
	base  string
	token string
	http  *http.Client
}

// NewAdminClient returns a client for the node that cfg configures. It
// finds the admin API's address in the data directory (the node writes it
// there once it listens) or else in cfg.Admin.Listen, and reads the admin
// token from the data directory. When the admin API serves TLS, the client
// trusts exactly the certificate in cfg.Admin.TLSCert, whatever names it
// carries: it dials loopback for an API that listens everywhere.
func NewAdminClient(cfg Config) (*AdminClient, error) {
	addr := cfg.Admin.Listen
	if b, err := os.ReadFile(filepath.Join(cfg.DataDir, AdminAddressFile)); err == nil {
		addr = strings.TrimSpace(string(b))
	}
	a, err := bridge.ParseAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: admin address: %v", ErrInvalidConfig, err)
	}
	hostPort := "unix" // a placeholder host for a unix socket's URLs
	switch a.Kind {
	case bridge.VSock:
		return nil, fmt.Errorf("%w: the admin API listens on %s, inside an enclave, whose admin token never leaves it: "+
			"run the node commands on a voter (health and metrics answer on the port the parent forwards)", ErrInvalidConfig, addr)
	case bridge.TCP:
		host, port, _ := net.SplitHostPort(addr)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		hostPort = net.JoinHostPort(host, port)
	}
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, AdminTokenFile))
	if err != nil {
		return nil, fmt.Errorf("node: admin token (has the node started once?): %w", err)
	}
	transport := &http.Transport{}
	if a.Kind == bridge.Unix {
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) { return a.Dial(ctx) }
	}
	scheme := "http"
	if cfg.Admin.tls() {
		if transport.TLSClientConfig, err = pinnedTLS(cfg.Admin.TLSCert); err != nil {
			return nil, err
		}
		scheme = "https"
	}
	return &AdminClient{
		base:  scheme + "://" + hostPort,
		token: strings.TrimSpace(string(tok)),
		http:  &http.Client{Timeout: adminCallTimeout, Transport: transport},
	}, nil
}

// pinnedTLS returns a TLS 1.3 client config that accepts one server
// certificate: the first in the PEM file at path.
func pinnedTLS(path string) (*tls.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node: admin.tls_cert: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: admin.tls_cert %s holds no PEM certificate", ErrInvalidConfig, path)
	}
	want, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: admin.tls_cert %s: %v", ErrInvalidConfig, path, err)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The pin below replaces the chain and name checks: the admin
		// API's certificate may be self-signed, and may not name the
		// loopback address the client dials.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !cs.PeerCertificates[0].Equal(want) {
				return fmt.Errorf("%w: the admin API's certificate is not the one in admin.tls_cert", ErrAdminAPI)
			}
			return nil
		},
	}, nil
}

// Pair asks the node to pair with the token's API user; it returns when the
// key generation is done and the user is served.
func (c *AdminClient) Pair(ctx context.Context, req PairRequest) (UserListing, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return UserListing{}, err
	}
	var info UserListing
	return info, c.do(ctx, http.MethodPost, PathPair, body, true, &info)
}

// Users lists the paired API users.
func (c *AdminClient) Users(ctx context.Context) ([]UserListing, error) {
	var users []UserListing
	return users, c.do(ctx, http.MethodGet, PathUsers, nil, true, &users)
}

// Status returns the node's status.
func (c *AdminClient) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, PathStatus, nil, true, &s)
}

// Stages returns the HDR histograms of the node's signing stages.
func (c *AdminClient) Stages(ctx context.Context) (StagesReport, error) {
	var r StagesReport
	return r, c.do(ctx, http.MethodGet, PathStages, nil, true, &r)
}

// JoinToken mints a one-time join token that expires after ttl (0: an
// hour) on the node. The token is a secret until it is used.
func (c *AdminClient) JoinToken(ctx context.Context, ttl time.Duration) (JoinTokenListing, error) {
	var req JoinTokenRequest
	if ttl != 0 {
		req.TTL = ttl.String()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return JoinTokenListing{}, err
	}
	var t JoinTokenListing
	return t, c.do(ctx, http.MethodPost, PathJoinToken, body, true, &t)
}

// Members returns the cluster's members as the node sees them.
func (c *AdminClient) Members(ctx context.Context) (ClusterView, error) {
	var v ClusterView
	return v, c.do(ctx, http.MethodGet, PathMembers, nil, true, &v)
}

// Request returns the cluster's record of one request; ErrNoRequest when it
// has none.
func (c *AdminClient) Request(ctx context.Context, id string) (RequestListing, error) {
	var r RequestListing
	return r, c.do(ctx, http.MethodGet, PathRequest+url.PathEscape(id), nil, true, &r)
}

// Requests returns a page of the requests the node's FSM retains, sorted
// by id, after the id after ("" for the first page), of at most limit
// (0: the largest page).
func (c *AdminClient) Requests(ctx context.Context, after string, limit int) (RequestPage, error) {
	var p RequestPage
	return p, c.do(ctx, http.MethodGet, PathRequests+"?"+listingQuery(limit, "after", after), nil, true, &p)
}

// Presignatures returns a page of the presignatures the node's FSM
// retains, sorted by key and seq, after key afterKey and seq afterSeq
// ("" and 0 for the first page), of at most limit (0: the largest page).
func (c *AdminClient) Presignatures(ctx context.Context, afterKey string, afterSeq uint64, limit int) (PresignaturePage, error) {
	var p PresignaturePage
	q := listingQuery(limit, "after_key", afterKey, "after_seq", strconv.FormatUint(afterSeq, 10))
	return p, c.do(ctx, http.MethodGet, PathPresignatures+"?"+q, nil, true, &p)
}

// Log returns a page of the committed raft log entries the node's FSM has
// applied, after index after (0 for the first page), of at most limit
// (0: the largest page).
func (c *AdminClient) Log(ctx context.Context, after uint64, limit int) (LogPage, error) {
	var p LogPage
	return p, c.do(ctx, http.MethodGet, PathLog+"?"+listingQuery(limit, "after", strconv.FormatUint(after, 10)), nil, true, &p)
}

// listingQuery encodes a listing's query: limit when set, then the
// cursor's name and value pairs.
func listingQuery(limit int, cursor ...string) string {
	v := url.Values{}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	for i := 0; i+1 < len(cursor); i += 2 {
		v.Set(cursor[i], cursor[i+1])
	}
	return v.Encode()
}

// Callback returns the cluster's callback handler; with set, it first
// records this node's configured handler as the cluster's.
func (c *AdminClient) Callback(ctx context.Context, set bool) (CallbackListing, error) {
	var l CallbackListing
	method := http.MethodGet
	if set {
		method = http.MethodPut
	}
	return l, c.do(ctx, method, PathCallback, nil, true, &l)
}

// SetUserCallback records user's own callback handler (its URL and its
// public key, PEM) and returns the cluster's handlers as recorded then.
// user is WORKSPACE/USER, or a user id only one workspace has. Refusals
// wrap cluster.ErrUnknownUser, ErrRefused (an ambiguous user id) or
// ErrBadCallbackHandler.
func (c *AdminClient) SetUserCallback(ctx context.Context, user, handlerURL string, keyPEM []byte) (CallbackListing, error) {
	body, err := json.Marshal(UserCallbackRequest{URL: handlerURL, PublicKeyPEM: string(keyPEM)})
	if err != nil {
		return CallbackListing{}, err
	}
	var l CallbackListing
	return l, c.do(ctx, http.MethodPut, PathUserCallback+url.PathEscape(user), body, true, &l)
}

// ClearUserCallback removes user's own callback handler, so that its
// requests go to the cluster's again. Refusals wrap
// cluster.ErrUnknownUser, ErrRefused or cluster.ErrNoUserCallback.
func (c *AdminClient) ClearUserCallback(ctx context.Context, user string) (CallbackListing, error) {
	var l CallbackListing
	return l, c.do(ctx, http.MethodDelete, PathUserCallback+url.PathEscape(user), nil, true, &l)
}

// Refresh refreshes user's MPC key shares (Node.Refresh). user is
// WORKSPACE/USER, or a user id only one workspace has. Refusals wrap
// cluster.ErrUnknownUser or ErrRefused.
func (c *AdminClient) Refresh(ctx context.Context, user string) (RefreshReport, error) {
	var rep RefreshReport
	return rep, c.do(ctx, http.MethodPost, PathRefresh+url.PathEscape(user), nil, true, &rep)
}

// RemoveMember removes another node from the cluster. Refusals wrap
// cluster.ErrMember or ErrRefused and explain themselves.
func (c *AdminClient) RemoveMember(ctx context.Context, id string) error {
	body, err := json.Marshal(RemoveRequest{Node: id})
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, PathRemove, body, true, nil)
}

// TransferLeadership asks the node, which must lead, to hand leadership
// to another voter.
func (c *AdminClient) TransferLeadership(ctx context.Context) (TransferReport, error) {
	var r TransferReport
	return r, c.do(ctx, http.MethodPost, PathTransferLeader, nil, true, &r)
}

// Policy returns the cluster's attestation policy.
func (c *AdminClient) Policy(ctx context.Context) ([]PolicyRule, error) {
	var doc PolicyDocument
	return doc.Rules, c.do(ctx, http.MethodGet, PathPolicy, nil, true, &doc)
}

// SetPolicy replaces the cluster's attestation policy and returns it as
// recorded.
func (c *AdminClient) SetPolicy(ctx context.Context, rules []PolicyRule) ([]PolicyRule, error) {
	body, err := json.Marshal(PolicyDocument{Rules: rules})
	if err != nil {
		return nil, err
	}
	var doc PolicyDocument
	return doc.Rules, c.do(ctx, http.MethodPut, PathPolicy, body, true, &doc)
}

// Leave drains the node and takes it out of the cluster for good; it
// answers once the node has left, after up to its shutdown grace, and
// the node then stops.
func (c *AdminClient) Leave(ctx context.Context) (DrainReport, error) {
	var r DrainReport
	return r, c.do(ctx, http.MethodPost, PathLeave, nil, true, &r)
}

// Healthy reports whether /v1/health answers 200.
func (c *AdminClient) Healthy(ctx context.Context) bool {
	return c.do(ctx, http.MethodGet, PathHealth, nil, false, nil) == nil
}

// CallbackPublicKey returns the cluster's callback public key, PEM.
func (c *AdminClient) CallbackPublicKey(ctx context.Context) ([]byte, error) {
	var pem []byte
	return pem, c.do(ctx, http.MethodGet, PathPublicKey, nil, false, &pem)
}

func (c *AdminClient) do(ctx context.Context, method, path string, body []byte, auth bool, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("node: admin API at %s (is the node running?): %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
	if err != nil {
		return fmt.Errorf("node: admin API: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return answerError(data, resp.Status, method, path)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = data
		return nil
	default:
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%w: %s %s: answer does not decode", ErrAdminAPI, method, path)
		}
		return nil
	}
}

// answerError is the error an answer other than 200 OK carries: its code's
// sentinel, with the server's message.
func answerError(data []byte, status, method, path string) error {
	var e adminError
	if json.Unmarshal(data, &e) != nil || e.Code == "" {
		return fmt.Errorf("%w: %s %s answered %s", ErrAdminAPI, method, path, status)
	}
	sentinel := codeError(e.Code)
	if rest, ok := strings.CutPrefix(e.Error, sentinel.Error()); ok {
		return fmt.Errorf("%w%s", sentinel, rest)
	}
	return fmt.Errorf("%w: %s", sentinel, e.Error)
}

// codeError maps an admin API error code to its sentinel.
func codeError(code string) error {
	switch code {
	case codeNotReady:
		return ErrNotReady
	case codeUnauthorized:
		return ErrUnauthorized
	case codeBadToken:
		return ErrBadToken
	case codeRoleMismatch:
		return ErrRoleMismatch
	case codeAlreadyPaired:
		return ErrAlreadyPaired
	case codeRefused:
		return ErrRefused
	case codeMember:
		return cluster.ErrMember
	case codeNoLeader:
		return cluster.ErrNotLeader
	case codeNotInitialized:
		return cluster.ErrNotInitialized
	case codeNotFound:
		return ErrNoRequest
	case codeUnknownUser:
		return cluster.ErrUnknownUser
	case codeNoUserCallback:
		return cluster.ErrNoUserCallback
	case codeBadHandler:
		return ErrBadCallbackHandler
	case codeRestoreRefused:
		return cluster.ErrRestoreRefused
	case codeNotRecipient:
		return ErrNotRecipient
	default:
		return ErrAdminAPI
	}
}
