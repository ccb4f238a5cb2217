package client

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/pki"
	"github.com/coterie-mpc/coterie/workspace/token"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"
)

var (
	// ErrTokenExpired is returned by Pair, before any network traffic, when
	// the token's expiry has passed.
	ErrTokenExpired = token.ErrExpired
	// ErrPairingMismatch is returned by Pair when the workspace's answer does
	// not fit the token: another CA, another user, or a certificate for
	// another key.
	ErrPairingMismatch = errors.New("client: pairing answer does not match the token")
	// ErrBadCredentials is returned by UnmarshalCredentials for a malformed
	// or inconsistent serialisation.
	ErrBadCredentials = errors.New("client: malformed credentials")
	// ErrNoWorkspace is returned by DialAdmin when the data directory does
	// not hold a workspace's files.
	ErrNoWorkspace = errors.New("client: no workspace in this data directory")
)

// maxMessageBytes is the largest message the clients accept (the MPC
// envelope limit plus room for framing).
const maxMessageBytes = mpc.MaxEnvelopeSize + 64<<10

// Credentials are what pairing gives a co-signer: where the workspace is,
// how to trust it, and how to authenticate to it. ClientKey is secret.
type Credentials struct {
	Address     string
	CAPin       [32]byte
	CACert      []byte // DER
	ClientCert  []byte // DER
	ClientKey   *ecdsa.PrivateKey
	WorkspaceID string
	UserID      string
	Role        protocol.WsRole
}

// MarshalBinary serialises the credentials. The result holds the client
// key: store it only encrypted.
func (c *Credentials) MarshalBinary() ([]byte, error) {
	key, err := x509.MarshalPKCS8PrivateKey(c.ClientKey)
	if err != nil {
		return nil, fmt.Errorf("client: marshal key: %w", err)
	}
	defer clear(key)
	return proto.MarshalOptions{Deterministic: true}.Marshal(&protocol.WsCredentials{
		Address: c.Address, CaPin: c.CAPin[:], CaCertificate: c.CACert, ClientCertificate: c.ClientCert,
		ClientKey: key, WorkspaceId: c.WorkspaceID, UserId: c.UserID, Role: c.Role,
	})
}

// UnmarshalCredentials parses MarshalBinary's output and checks that the
// key matches the certificate and the CA matches the pin.
func UnmarshalCredentials(b []byte) (*Credentials, error) {
	m := &protocol.WsCredentials{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%w: does not decode", ErrBadCredentials)
	}
	defer clear(m.ClientKey)
	k, err := x509.ParsePKCS8PrivateKey(m.GetClientKey())
	if err != nil {
		return nil, fmt.Errorf("%w: client key does not parse", ErrBadCredentials)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: client key is not ECDSA", ErrBadCredentials)
	}
	if _, err := pki.KeyPairFromDER(m.GetClientCertificate(), key); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCredentials, err)
	}
	ca, err := x509.ParseCertificate(m.GetCaCertificate())
	if err != nil || len(m.GetCaPin()) != 32 || pki.Pin(ca) != [32]byte(m.GetCaPin()) {
		return nil, fmt.Errorf("%w: CA certificate does not match the pin", ErrBadCredentials)
	}
	if m.GetAddress() == "" || m.GetUserId() == "" {
		return nil, fmt.Errorf("%w: no address or user", ErrBadCredentials)
	}
	return &Credentials{
		Address: m.GetAddress(), CAPin: [32]byte(m.GetCaPin()), CACert: m.GetCaCertificate(),
		ClientCert: m.GetClientCertificate(), ClientKey: key,
		WorkspaceID: m.GetWorkspaceId(), UserID: m.GetUserId(), Role: m.GetRole(),
	}, nil
}

// PairConfig is what Pair needs.
type PairConfig struct {
	// Token is the pairing token string, as the operator pasted it.
	Token string
	// ApprovalKey is the co-signer's Ed25519 approval public key; required
	// for approver roles.
	ApprovalKey ed25519.PublicKey
	// CallbackKey is the co-signer's callback JWT public key.
	CallbackKey crypto.PublicKey
	// Clock checks the token's expiry and certificate validity; nil is the
	// real clock.
	Clock clock.Clock
}

// Pair redeems a pairing token: it dials the address in the token, trusts
// the server only if its CA matches the token's pin, and registers the
// keys. It returns the credentials and the workspace's answer, which for
// signer roles says how to run key generation (see Keygen).
func Pair(ctx context.Context, cfg PairConfig, opts ...grpc.DialOption) (*Credentials, *protocol.WsPairResponse, error) {
	clk := cfg.Clock
	if clk == nil {
		clk = clock.Real()
	}
	tok, err := token.Parse(cfg.Token)
	if err != nil {
		return nil, nil, err
	}
	if err := tok.CheckExpiry(clk.Now()); err != nil {
		return nil, nil, err
	}
	var cbDER []byte
	if cfg.CallbackKey != nil {
		if cbDER, err = x509.MarshalPKIXPublicKey(cfg.CallbackKey); err != nil {
			return nil, nil, fmt.Errorf("client: callback key: %w", err)
		}
	}
	csr, key, err := pki.NewCSR()
	if err != nil {
		return nil, nil, err
	}
	f := tok.Fields
	conn, err := dial(f.GetAddress(), tok.Pin(), nil, clk, opts)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	resp, err := protocol.NewWsCosignerClient(conn).Pair(ctx, &protocol.WsPairRequest{
		Token: tok.String(), Csr: csr, ApprovalPublicKey: cfg.ApprovalKey, CallbackPublicKey: cbDER,
	})
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(resp.GetCaCertificate())
	if err != nil || pki.Pin(ca) != tok.Pin() {
		return nil, nil, fmt.Errorf("%w: CA certificate", ErrPairingMismatch)
	}
	kp, err := pki.KeyPairFromDER(resp.GetClientCertificate(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrPairingMismatch, err)
	}
	if kp.Leaf.Subject.CommonName != f.GetUserId() || resp.GetUser().GetId() != f.GetUserId() {
		return nil, nil, fmt.Errorf("%w: user", ErrPairingMismatch)
	}
	// The workspace ID is how a co-signer serving several workspaces tells
	// their users apart; the answer must name the token's.
	if resp.GetUser().GetWorkspaceId() != f.GetWorkspaceId() {
		return nil, nil, fmt.Errorf("%w: workspace", ErrPairingMismatch)
	}
	return &Credentials{
		Address: f.GetAddress(), CAPin: tok.Pin(), CACert: resp.GetCaCertificate(),
		ClientCert: resp.GetClientCertificate(), ClientKey: key,
		WorkspaceID: f.GetWorkspaceId(), UserID: f.GetUserId(), Role: f.GetRole(),
	}, resp, nil
}

func dial(addr string, pin [32]byte, cert *tls.Certificate, clk clock.Clock, opts []grpc.DialOption) (*grpc.ClientConn, error) {
	tc := pki.ClientTLS(pin, cert, clk.Now)
	all := append([]grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(tc)),
		// A connection whose peer went silent (a dead link drops packets
		// without a reset) is closed and dialed again, rather than holding
		// every call on it until its timeout. The workspace server permits
		// pings every 5 s.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes)),
	}, opts...)
	// passthrough hands addr to the dialer as it is, so that a dialer
	// option (a node's workspace.routes) sees the workspace's host name
	// rather than an address gRPC resolved first.
	conn, err := grpc.NewClient("passthrough:///"+addr, all...)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", addr, err)
	}
	return conn, nil
}

// Client is a paired co-signer's connection to the workspace. The embedded
// WsCosignerClient offers every RPC; the methods below add the MPC relay
// and approvals.
type Client struct {
	protocol.WsCosignerClient
	conn  *grpc.ClientConn
	creds *Credentials
}

// Dial connects with the credentials from Pair. It does not wait for the
// connection; the first call does.
func Dial(creds *Credentials, opts ...grpc.DialOption) (*Client, error) {
	kp, err := pki.KeyPairFromDER(creds.ClientCert, creds.ClientKey)
	if err != nil {
		return nil, err
	}
	conn, err := dial(creds.Address, creds.CAPin, &kp, clock.Real(), opts)
	if err != nil {
		return nil, err
	}
	return &Client{WsCosignerClient: protocol.NewWsCosignerClient(conn), conn: conn, creds: creds}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Credentials returns the client's credentials; the caller must not modify
// them.
func (c *Client) Credentials() *Credentials { return c.creds }

// Admin is the operator's client.
type Admin struct {
	protocol.WsAdminClient
	conn *grpc.ClientConn
	// Address is the server's address, from the data directory.
	Address string
}

// DialAdmin connects to the workspace served from dataDir, with the admin
// credential and CA found there.
func DialAdmin(dataDir string, opts ...grpc.DialOption) (*Admin, error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dataDir, name))
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s has no %s (start it with `coterie workspace serve --data-dir %s`)", ErrNoWorkspace, dataDir, name, dataDir)
		}
		return b, err
	}
	addr, err := read("address")
	if err != nil {
		return nil, err
	}
	caPEM, err := read("ca.pem")
	if err != nil {
		return nil, err
	}
	adminPEM, err := read("admin.pem")
	if err != nil {
		return nil, err
	}
	ca, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		return nil, err
	}
	kp, err := pki.ParseKeyPair(adminPEM)
	if err != nil {
		return nil, err
	}
	a := strings.TrimSpace(string(addr))
	conn, err := dial(a, pki.Pin(ca), &kp, clock.Real(), opts)
	if err != nil {
		return nil, err
	}
	return &Admin{WsAdminClient: protocol.NewWsAdminClient(conn), conn: conn, Address: a}, nil
}

// Close closes the connection.
func (a *Admin) Close() error { return a.conn.Close() }

// WaitReady blocks until the workspace answers, or ctx ends; it retries
// about every 50 ms. It is for scripts and tests that start a server and a
// client together.
func (a *Admin) WaitReady(ctx context.Context) error {
	for {
		_, err := a.Stats(ctx, &protocol.WsStatsRequest{})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("client: workspace at %s not ready: %w", a.Address, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
