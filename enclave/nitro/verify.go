package nitro

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave"
)

// DefaultMaxAge is how old a document may be by default. A join verifies
// evidence seconds after it was made; the margin covers clock skew.
const DefaultMaxAge = 10 * time.Minute

// Config configures a Verifier.
type Config struct {
	// Roots are the trusted roots. Production uses AWSRoots(); tests pass
	// their own.
	Roots *x509.CertPool
	// Clock tells the time that certificates and timestamps are checked
	// against.
	Clock clock.Clock
	// MaxAge bounds how far a document's timestamp may be from the clock,
	// in the past or the future.
	MaxAge time.Duration
}

// DefaultConfig returns a Config that trusts only the pinned AWS Nitro
// root, on the real clock, with DefaultMaxAge.
func DefaultConfig() Config {
	return Config{Roots: AWSRoots(), Clock: clock.Real(), MaxAge: DefaultMaxAge}
}

// Validate reports every problem with c at once, or nil.
func (c Config) Validate() error {
	var errs []error
	if c.Roots == nil {
		errs = append(errs, errors.New("nitro: Roots is nil"))
	}
	if c.Clock == nil {
		errs = append(errs, errors.New("nitro: Clock is nil"))
	}
	if c.MaxAge <= 0 {
		errs = append(errs, fmt.Errorf("nitro: MaxAge %v is not positive", c.MaxAge))
	}
	return errors.Join(errs...)
}

// Verifier checks Nitro attestation documents. It is safe for concurrent
// use and does no I/O.
type Verifier struct {
	cfg Config
}

var _ enclave.Verifier = (*Verifier)(nil)

// New returns a Verifier, or the error of cfg.Validate.
func New(cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Verifier{cfg: cfg}, nil
}

// Expect is what a caller of VerifyDocument expects of a document beyond
// its authenticity. Nil fields are not checked.
type Expect struct {
	// Nonce is the challenge the caller gave the enclave.
	Nonce []byte
}

// VerifyDocument checks that raw is a genuine, current attestation document
// (see the package documentation for the order of the checks) and returns
// it. Errors: ErrMalformed, ErrBadSignature, ErrWrongChain, ErrExpired,
// ErrNonceMismatch.
func (v *Verifier) VerifyDocument(raw []byte, want Expect) (Document, error) {
	p, err := parse(raw)
	if err != nil {
		return Document{}, err
	}
	leaf, err := x509.ParseCertificate(p.doc.Certificate)
	if err != nil {
		return Document{}, fmt.Errorf("%w: leaf certificate: %v", ErrMalformed, err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return Document{}, fmt.Errorf("%w: the leaf certificate's key is not ECDSA P-384", ErrBadSignature)
	}
	digest := sha512.Sum384(sigStructure(p.msg.Protected, p.msg.Payload))
	r := new(big.Int).SetBytes(p.msg.Signature[:signatureBytes/2])
	s := new(big.Int).SetBytes(p.msg.Signature[signatureBytes/2:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return Document{}, ErrBadSignature
	}
	now := v.cfg.Clock.Now()
	if err := v.verifyChain(leaf, p.doc.CABundle, now); err != nil {
		return Document{}, err
	}
	if age := now.Sub(p.doc.Timestamp); age > v.cfg.MaxAge || age < -v.cfg.MaxAge {
		return Document{}, fmt.Errorf("%w: made at %s, %v from now (at most %v)", ErrExpired,
			p.doc.Timestamp.Format(time.RFC3339), age.Round(time.Second), v.cfg.MaxAge)
	}
	if want.Nonce != nil && subtle.ConstantTimeCompare(want.Nonce, p.doc.Nonce) != 1 {
		return Document{}, ErrNonceMismatch
	}
	return p.doc, nil
}

// verifyChain checks that leaf chains to a root of the Verifier's pool at
// now, through the certificates of bundle.
func (v *Verifier) verifyChain(leaf *x509.Certificate, bundle [][]byte, now time.Time) error {
	inter := x509.NewCertPool()
	for _, der := range bundle {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("%w: cabundle certificate: %v", ErrMalformed, err)
		}
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: v.cfg.Roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	var invalid x509.CertificateInvalidError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return fmt.Errorf("%w: %v", ErrExpired, err)
	default:
		return fmt.Errorf("%w: %v", ErrWrongChain, err)
	}
}

// Verify implements enclave.Verifier for Nitro evidence: a framed document
// whose user_data is the report data. Besides VerifyDocument's errors:
// enclave.ErrUnsupportedKind for evidence of another kind, ErrDebugMode,
// ErrPCRNotAllowed, and enclave.ErrInvalidPolicy.
func (v *Verifier) Verify(_ context.Context, evidence []byte, p enclave.Policy) (enclave.Identity, error) {
	if err := p.Validate(); err != nil {
		return enclave.Identity{}, err
	}
	kind, raw, err := enclave.ParseEvidence(evidence)
	if err != nil {
		return enclave.Identity{}, err
	}
	if kind != enclave.KindNitro {
		return enclave.Identity{}, fmt.Errorf("%w: the nitro verifier got %s evidence", enclave.ErrUnsupportedKind, kind)
	}
	doc, err := v.VerifyDocument(raw, Expect{})
	if err != nil {
		return enclave.Identity{}, err
	}
	if len(doc.UserData) != enclave.MaxReportData {
		return enclave.Identity{}, fmt.Errorf("%w: user_data of %d bytes is not report data", ErrMalformed, len(doc.UserData))
	}
	id := Identity(doc)
	if err := p.Check(id); err != nil {
		if id.Debug {
			return enclave.Identity{}, fmt.Errorf("%w: %s", ErrDebugMode, id)
		}
		return enclave.Identity{}, fmt.Errorf("%w: %s", ErrPCRNotAllowed, id)
	}
	return id, nil
}

// policyPCRs are the PCRs besides PCR0 and PCR8 that an identity carries
// and a rule may pin.
var policyPCRs = []uint32{1, 2, 3, 4}

// Identity returns the enclave identity a verified document proves: PCR0
// as the measurement, PCR8 as the signer, PCR1 to PCR4 as further PCRs,
// debug mode when PCR0 is all zero, and user_data as the report data.
func Identity(doc Document) enclave.Identity {
	id := enclave.Identity{
		Kind:        enclave.KindNitro,
		Measurement: bytes.Clone(doc.PCRs[0]),
		Signer:      bytes.Clone(doc.PCRs[8]),
		Debug:       enclave.AllZero(doc.PCRs[0]),
		ReportData:  bytes.Clone(doc.UserData),
	}
	for _, i := range policyPCRs {
		if v, ok := doc.PCRs[i]; ok {
			if id.PCRs == nil {
				id.PCRs = make(map[uint32][]byte)
			}
			id.PCRs[i] = bytes.Clone(v)
		}
	}
	return id
}
