package cluster

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"time"
)

// PeerAuthorizer says which TLS peers are cluster members. The FSM's
// member table implements it (the lead writes that). Safe for concurrent use.
type PeerAuthorizer interface {
	// Member returns the id of the member whose identity key is pub.
	Member(pub ed25519.PublicKey) (id string, ok bool)
}

// JoinServer serves the join handshake to a TLS peer that is not (yet) a
// member. The lead writes it (cluster/join.go).
type JoinServer interface {
	// ServeJoin answers one join request from the peer whose identity key
	// is peer. req and the answer are opaque encoded messages, at most
	// MaxCommandBytes each; an error is sent back as a short text (it never
	// holds a secret).
	ServeJoin(ctx context.Context, peer ed25519.PublicKey, req []byte) ([]byte, error)
}

// IdentityPin returns the SHA-256 of a node's raw 32-byte identity public
// key: what a join token carries so that the joiner accepts only the
// cluster's member, whatever answers at the token's address.
func IdentityPin(pub ed25519.PublicKey) [32]byte { return sha256.Sum256(pub) }

// fingerprint names an identity key in logs and errors: the first 8 bytes
// of its pin, in hex. A public key is no secret; the short form only keeps
// lines readable.
func fingerprint(pub ed25519.PublicKey) string {
	pin := IdentityPin(pub)
	return hex.EncodeToString(pin[:8])
}

// newCertificate makes the self-signed TLS certificate of an identity key,
// in memory: it is rebuilt at every start and never written anywhere.
// Nothing checks its dates or its signature: a peer is trusted for the
// public key the TLS 1.3 handshake proves it holds (CertificateVerify), not
// for the certificate around it, so the validity window is only wide
// enough for other TLS stacks to parse it.
func newCertificate(identity ed25519.PrivateKey) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cluster: certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "coterie node"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(100 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, identity.Public(), identity)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cluster: make the identity certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: identity}, nil
}

// peerKey returns the identity key a TLS peer proved it holds: the Ed25519
// key of its one certificate.
func peerKey(cs tls.ConnectionState) (ed25519.PublicKey, error) {
	if len(cs.PeerCertificates) != 1 {
		return nil, fmt.Errorf("cluster: peer sent %d certificates, want its one identity certificate", len(cs.PeerCertificates))
	}
	pub, ok := cs.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("cluster: peer certificate key is %T, want Ed25519", cs.PeerCertificates[0].PublicKey)
	}
	return pub, nil
}

// serverTLS is the listener's TLS 1.3 configuration. Every client must
// present an identity certificate; which streams it may open is decided
// after the handshake, from the member table, because a key that is not a
// member may still join.
func serverTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAnyClientCert,
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		// Resumption would skip the certificate exchange; every connection
		// proves its key afresh.
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := peerKey(cs)
			return err
		},
	}
}

// clientTLS is a dialer's TLS 1.3 configuration: the server is accepted
// when check accepts the identity key it proves it holds.
func clientTLS(cert tls.Certificate, check func(ed25519.PublicKey) error) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		// No CA and no host name: the server is authorised by its key, in
		// VerifyConnection, which runs whatever this says.
		InsecureSkipVerify: true,
		ServerName:         "coterie",
		VerifyConnection: func(cs tls.ConnectionState) error {
			pub, err := peerKey(cs)
			if err != nil {
				return err
			}
			return check(pub)
		},
	}
}
