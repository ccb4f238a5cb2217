// Package nitrotest is for tests only. It builds Nitro attestation
// documents with the structure the Nitro hypervisor gives them — a
// COSE_Sign1 with ES384 over the CBOR payload, a leaf certificate and a
// cabundle from a root — under a test root of its own, so that tests verify
// them with the real verifier of package nitro given that root. Nothing
// here pretends to be AWS: a verifier with the AWS root refuses all of it.
package nitrotest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/nitro"
)

// PKI is a test root, an intermediate and a leaf, shaped like the Nitro
// PKI: P-384 keys, ECDSA-SHA384 signatures, a leaf that lives a few hours.
type PKI struct {
	Root, Intermediate, Leaf          *x509.Certificate
	rootKey, intermediateKey, leafKey *ecdsa.PrivateKey
}

// LeafLife is how long a test leaf certificate is valid, as long as a real
// one.
const LeafLife = 3 * time.Hour

// NewPKI returns a fresh test PKI whose leaf is valid from now on for
// LeafLife. It fails t on error.
func NewPKI(t testing.TB, now time.Time) *PKI {
	t.Helper()
	p := &PKI{rootKey: key(t), intermediateKey: key(t), leafKey: key(t)}
	p.Root = cert(t, "test nitro root", true, now.Add(-time.Hour), now.AddDate(30, 0, 0), &p.rootKey.PublicKey, nil, p.rootKey)
	p.Intermediate = cert(t, "test nitro intermediate", true, now.Add(-time.Hour), now.AddDate(0, 1, 0), &p.intermediateKey.PublicKey, p.Root, p.rootKey)
	p.Leaf = cert(t, "i-test-enc0123456789abcdef", false, now, now.Add(LeafLife), &p.leafKey.PublicKey, p.Intermediate, p.intermediateKey)
	return p
}

// Roots returns a pool with the test root, for nitro.Config.Roots.
func (p *PKI) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.Root)
	return pool
}

func key(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func cert(t testing.TB, cn string, ca bool, from, until time.Time, pub *ecdsa.PublicKey, parent *x509.Certificate, signer *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: []string{"Coterie tests"}},
		NotBefore: from, NotAfter: until, SignatureAlgorithm: x509.ECDSAWithSHA384,
		BasicConstraintsValid: true, IsCA: ca, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if ca {
		tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// PCR returns a 48-byte PCR value filled with b.
func PCR(b byte) []byte { return bytes.Repeat([]byte{b}, enclave.NitroPCRSize) }

// PCRs returns the PCRs of a test enclave in production mode: PCR0, 1, 2
// and 8 filled with pcr0, 1, 2 and 8, the others zero as on a real enclave.
func PCRs(pcr0 byte) map[uint32][]byte {
	m := map[uint32][]byte{}
	for i := range uint32(16) {
		m[i] = PCR(0)
	}
	m[0], m[1], m[2], m[8] = PCR(pcr0), PCR(1), PCR(2), PCR(8)
	return m
}

// DebugPCRs returns the PCRs of an enclave in debug mode: all zero.
func DebugPCRs() map[uint32][]byte {
	m := map[uint32][]byte{}
	for i := range uint32(16) {
		m[i] = PCR(0)
	}
	return m
}

// Document returns doc's payload signed by the PKI's leaf as a COSE_Sign1,
// with the PKI's leaf and its chain filled in when doc leaves them empty.
func (p *PKI) Document(t testing.TB, doc nitro.Document) []byte {
	t.Helper()
	if doc.Certificate == nil {
		doc.Certificate = p.Leaf.Raw
	}
	if doc.CABundle == nil {
		doc.CABundle = [][]byte{p.Root.Raw, p.Intermediate.Raw}
	}
	if doc.ModuleID == "" {
		doc.ModuleID = "i-test-enc0123456789abcdef"
	}
	if doc.Digest == "" {
		doc.Digest = "SHA384"
	}
	return p.Sign(t, EncodePayload(t, doc))
}

// Sign returns payload signed by the PKI's leaf as an untagged COSE_Sign1
// with ES384, as the NSM makes it.
func (p *PKI) Sign(t testing.TB, payload []byte) []byte {
	t.Helper()
	return SignWith(t, p.leafKey, payload)
}

// SignWith is Sign with another key, for documents whose signature must
// not verify.
func SignWith(t testing.TB, k *ecdsa.PrivateKey, payload []byte) []byte {
	t.Helper()
	protected := mustMarshal(t, map[int]int{1: -35})
	sigStructure := mustMarshal(t, []any{"Signature1", protected, []byte{}, payload})
	h := sha512.Sum384(sigStructure)
	r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 96)
	r.FillBytes(sig[:48])
	s.FillBytes(sig[48:])
	return mustMarshal(t, []any{protected, map[int]any{}, payload, sig})
}

// NewKey returns a fresh P-384 key, for SignWith.
func NewKey(t testing.TB) *ecdsa.PrivateKey { return key(t) }

// EncodePayload encodes doc as the payload of an attestation document.
func EncodePayload(t testing.TB, doc nitro.Document) []byte {
	t.Helper()
	m := map[string]any{
		"module_id": doc.ModuleID, "digest": doc.Digest, "timestamp": uint64(doc.Timestamp.UnixMilli()),
		"pcrs": doc.PCRs, "certificate": doc.Certificate, "cabundle": doc.CABundle,
		"public_key": doc.PublicKey, "user_data": doc.UserData, "nonce": doc.Nonce,
	}
	return mustMarshal(t, m)
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	b, err := em.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Attester is a test-only enclave.Attester whose evidence is a document of
// the test PKI with the given PCRs and the report data in user_data, made
// at the time Now returns. It verifies peers' evidence with Verifier.
type Attester struct {
	enclave.Verifier
	T    testing.TB
	PKI  *PKI
	PCRs map[uint32][]byte
	Now  func() time.Time
}

var _ enclave.Attester = (*Attester)(nil)

// Kind returns enclave.KindNitro.
func (a *Attester) Kind() enclave.Kind { return enclave.KindNitro }

// Evidence returns a framed test document over reportData.
func (a *Attester) Evidence(_ context.Context, reportData []byte) ([]byte, error) {
	rd, err := enclave.PadReportData(reportData)
	if err != nil {
		return nil, err
	}
	doc := a.PKI.Document(a.T, nitro.Document{Timestamp: a.Now(), PCRs: a.PCRs, UserData: rd})
	return enclave.AppendEvidence(nil, enclave.KindNitro, doc), nil
}

// Document returns a raw test document (not framed as evidence) with
// publicKey in public_key and no user data, as a Nitro enclave asks the
// NSM for one to put in a KMS Recipient.
func (a *Attester) Document(_ context.Context, publicKey []byte) ([]byte, error) {
	return a.PKI.Document(a.T, nitro.Document{Timestamp: a.Now(), PCRs: a.PCRs, PublicKey: publicKey}), nil
}
