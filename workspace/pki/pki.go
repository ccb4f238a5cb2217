package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Organizational units that tell the kinds of certificate apart.
const (
	// UnitServer marks the gRPC listener's certificate.
	UnitServer = "server"
	// UnitAdmin marks the operator's client certificate.
	UnitAdmin = "admin"
	// UnitUser marks an API user's client certificate; its common name is the
	// user ID.
	UnitUser = "user"
)

var (
	// ErrPinMismatch is returned by the client's TLS verification when no
	// certificate the server presents is a CA with the pinned key.
	ErrPinMismatch = errors.New("pki: server CA does not match the pin")
	// ErrBadCSR is returned by IssueClient when the certificate request does
	// not parse, is not ECDSA P-256 or carries a bad signature.
	ErrBadCSR = errors.New("pki: certificate request is invalid")
	// ErrBadPEM is returned when PEM input does not hold the expected blocks.
	ErrBadPEM = errors.New("pki: malformed PEM")
)

// CA is the workspace's certificate authority. It is immutable and safe for
// concurrent use.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA generates a fresh ECDSA P-256 CA valid from now for validity.
func NewCA(commonName string, now time.Time, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"coterie workspace"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse CA certificate: %w", err)
	}
	return &CA{cert: cert, key: key}, nil
}

// LoadCA rebuilds a CA from its certificate PEM and its PKCS#8 key PEM.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(key.Public()) || !cert.IsCA {
		return nil, fmt.Errorf("%w: CA key does not match the CA certificate", ErrBadPEM)
	}
	return &CA{cert: cert, key: key}, nil
}

// Certificate returns the CA certificate. The caller must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate as PEM.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// KeyPEM returns the CA's private key as PKCS#8 PEM. It is a secret: the
// caller seals it or writes it 0600, and never logs it.
func (ca *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: marshal CA key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Pin returns the pin of the CA: the SHA-256 of its SubjectPublicKeyInfo.
func (ca *CA) Pin() [32]byte { return Pin(ca.cert) }

// DeriveKey returns a 32-byte secret derived from the CA key for purpose
// label (HKDF-SHA256), so that the workspace needs no second stored secret
// for, for example, the pairing-token MAC.
func (ca *CA) DeriveKey(label string) ([]byte, error) {
	priv, err := ca.key.ECDH()
	if err != nil {
		return nil, fmt.Errorf("pki: derive key: %w", err)
	}
	return hkdf.Key(sha256.New, priv.Bytes(), ca.cert.Raw, "coterie/workspace/"+label, 32)
}

// Pin returns the SHA-256 of cert's SubjectPublicKeyInfo.
func Pin(cert *x509.Certificate) [32]byte {
	return sha256.Sum256(cert.RawSubjectPublicKeyInfo)
}

// IssueServer issues a server certificate for hosts (names or IP
// addresses), with a fresh key. The returned chain holds the leaf and the CA.
func (ca *CA) IssueServer(hosts []string, now time.Time, validity time.Duration) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "coterie workspace", OrganizationalUnit: []string{UnitServer}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: create server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key}, nil
}

// IssueClient issues a client certificate for the key in csrDER, with the
// given common name and unit. The CSR's subject is ignored.
func (ca *CA) IssueClient(csrDER []byte, commonName, unit string, now time.Time, validity time.Duration) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: bad signature", ErrBadCSR)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: key is not ECDSA P-256", ErrBadCSR)
	}
	return ca.issueClient(pub, commonName, unit, now, validity)
}

// NewClient generates a key and issues a client certificate for it.
func (ca *CA) NewClient(commonName, unit string, now time.Time, validity time.Duration) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: generate client key: %w", err)
	}
	der, err := ca.issueClient(&key.PublicKey, commonName, unit, now, validity)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func (ca *CA) issueClient(pub crypto.PublicKey, commonName, unit string, now time.Time, validity time.Duration) ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: commonName, OrganizationalUnit: []string{unit}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: create client certificate: %w", err)
	}
	return der, nil
}

// NewCSR generates an ECDSA P-256 key and a certificate request for it.
func NewCSR() (csrDER []byte, key *ecdsa.PrivateKey, err error) {
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate key: %w", err)
	}
	csrDER, err = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "coterie co-signer"}}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: create certificate request: %w", err)
	}
	return csrDER, key, nil
}

func randomSerial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	b[0] &= 0x7f
	return new(big.Int).SetBytes(b)
}

// ServerTLS returns the listener's TLS configuration: TLS 1.3, the server
// certificate, and client certificates verified against the CA when given.
// Pairing calls carry no client certificate; everything else is refused by
// the server's authorization unless it presents one. now supplies the time
// for certificate validity.
func ServerTLS(ca *CA, cert tls.Certificate, now func() time.Time) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
		Time:         now,
	}
}

// ClientTLS returns a client TLS configuration that trusts a server whose
// chain holds a CA with the given pin and whose leaf that CA signed for
// server auth. clientCert may be nil (pairing). now supplies the time for
// certificate validity.
func ClientTLS(pin [32]byte, clientCert *tls.Certificate, now func() time.Time) *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The standard verification checks host names against a public
		// root set; the pin replaces it entirely (see the package doc).
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyPinned(raw, pin, now())
		},
	}
	if clientCert != nil {
		cfg.Certificates = []tls.Certificate{*clientCert}
	}
	return cfg
}

func verifyPinned(raw [][]byte, pin [32]byte, now time.Time) error {
	if len(raw) == 0 || len(raw) > 4 {
		return fmt.Errorf("pki: server sent %d certificates", len(raw))
	}
	certs := make([]*x509.Certificate, 0, len(raw))
	for _, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return fmt.Errorf("pki: server certificate: %w", err)
		}
		certs = append(certs, c)
	}
	var ca *x509.Certificate
	for _, c := range certs[1:] {
		if c.IsCA && Pin(c) == pin {
			ca = c
			break
		}
	}
	if ca == nil {
		return ErrPinMismatch
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("pki: server certificate: %w", err)
	}
	return nil
}

// Identity is who a verified client certificate names.
type Identity struct {
	// CommonName is the user ID for UnitUser, "admin" for UnitAdmin.
	CommonName string
	// Unit is UnitUser or UnitAdmin.
	Unit string
	// CertSHA256 is the SHA-256 of the certificate's DER.
	CertSHA256 [32]byte
}

// PeerIdentity returns the identity of the verified client certificate in
// state, and false when the client presented none. The TLS layer has already
// verified the chain against the CA (ServerTLS).
func PeerIdentity(state tls.ConnectionState) (Identity, bool) {
	if len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return Identity{}, false
	}
	leaf := state.VerifiedChains[0][0]
	id := Identity{CommonName: leaf.Subject.CommonName, CertSHA256: sha256.Sum256(leaf.Raw)}
	if len(leaf.Subject.OrganizationalUnit) == 1 {
		id.Unit = leaf.Subject.OrganizationalUnit[0]
	}
	return id, true
}

// ParseCertPEM parses the first CERTIFICATE block of b.
func ParseCertPEM(b []byte) (*x509.Certificate, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%w: no CERTIFICATE block", ErrBadPEM)
		}
		if blk.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadPEM, err)
			}
			return c, nil
		}
	}
}

func parseKeyPEM(b []byte) (*ecdsa.PrivateKey, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%w: no PRIVATE KEY block", ErrBadPEM)
		}
		if blk.Type != "PRIVATE KEY" {
			continue
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			// The parse error never quotes key bytes.
			return nil, fmt.Errorf("%w: private key does not parse", ErrBadPEM)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok || ek.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: private key is not ECDSA P-256", ErrBadPEM)
		}
		return ek, nil
	}
}

// EncodeKeyPair returns cert's leaf certificate and its private key as PEM
// (CERTIFICATE then PRIVATE KEY). The result holds a secret.
func EncodeKeyPair(cert tls.Certificate) ([]byte, error) {
	if len(cert.Certificate) == 0 {
		return nil, fmt.Errorf("%w: empty certificate", ErrBadPEM)
	}
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("pki: marshal key: %w", err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...), nil
}

// ParseKeyPair parses the output of EncodeKeyPair, checking that the key
// matches the certificate.
func ParseKeyPair(b []byte) (tls.Certificate, error) {
	cert, err := ParseCertPEM(b)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := parseKeyPEM(b)
	if err != nil {
		return tls.Certificate{}, err
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(key.Public()) {
		return tls.Certificate{}, fmt.Errorf("%w: key does not match the certificate", ErrBadPEM)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}, nil
}

// KeyPairFromDER builds a client certificate from a DER certificate and its
// key, checking that they match.
func KeyPairFromDER(certDER []byte, key *ecdsa.PrivateKey) (tls.Certificate, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: client certificate: %w", err)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(key.Public()) {
		return tls.Certificate{}, fmt.Errorf("%w: key does not match the certificate", ErrBadPEM)
	}
	return tls.Certificate{Certificate: [][]byte{certDER}, PrivateKey: key, Leaf: cert}, nil
}
