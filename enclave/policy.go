package enclave

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Identity is what verified evidence proves about a peer enclave. Its fields
// are public values; none is secret.
type Identity struct {
	// Kind is the peer's enclave kind.
	Kind Kind
	// Measurement identifies the exact code: SGX MRENCLAVE, Nitro PCR0, a
	// Confidential Space image digest, the sim's executable hash.
	Measurement []byte
	// Signer identifies who signed the code: SGX MRSIGNER, Nitro PCR8, the
	// Confidential Space image signer, the sim's configured signer.
	Signer []byte
	// Product is the product ID under the signer (SGX ISVPRODID, 16 bytes).
	Product []byte
	// SecurityVersion is the code's security version (SGX ISVSVN).
	SecurityVersion uint32
	// Debug is true for an enclave whose memory the host can read.
	Debug bool
	// ReportData is the caller-chosen data the evidence covers, padded with
	// zeros to MaxReportData bytes.
	ReportData []byte
}

// String describes the identity for logs and errors. It holds no secret.
func (id Identity) String() string {
	return fmt.Sprintf("%s measurement=%x signer=%x product=%x svn=%d debug=%t",
		id.Kind, id.Measurement, id.Signer, id.Product, id.SecurityVersion, id.Debug)
}

// Policy is the set of enclave identities a cluster lets in: a peer is
// allowed if any rule matches it.
type Policy struct {
	Allow []Rule
}

// Rule matches enclave identities of one kind. It pins either the exact code
// (Measurement) or the signer and product (Signer and Product), or both. Set
// fields must match exactly.
type Rule struct {
	Kind        Kind
	Measurement []byte
	Signer      []byte
	Product     []byte
	// MinSecurityVersion is the lowest security version accepted.
	MinSecurityVersion uint32
	// AllowDebug admits debug enclaves, whose memory the host can read.
	AllowDebug bool
}

// String describes the rule for logs and errors.
func (r Rule) String() string {
	var b strings.Builder
	b.WriteString(r.Kind.String())
	if len(r.Measurement) > 0 {
		b.WriteString(" measurement=" + hex.EncodeToString(r.Measurement))
	}
	if len(r.Signer) > 0 {
		b.WriteString(" signer=" + hex.EncodeToString(r.Signer))
	}
	if len(r.Product) > 0 {
		b.WriteString(" product=" + hex.EncodeToString(r.Product))
	}
	fmt.Fprintf(&b, " min-svn=%d debug=%t", r.MinSecurityVersion, r.AllowDebug)
	return b.String()
}

// Validate reports every problem with p at once, each wrapping
// ErrInvalidPolicy, or nil.
func (p Policy) Validate() error {
	var errs []error
	if len(p.Allow) == 0 {
		errs = append(errs, fmt.Errorf("%w: no rules; it would allow nothing", ErrInvalidPolicy))
	}
	for i, r := range p.Allow {
		if !r.Kind.Valid() {
			errs = append(errs, fmt.Errorf("%w: rule %d: unknown enclave kind %s", ErrInvalidPolicy, i, r.Kind))
		}
		if len(r.Measurement) == 0 && (len(r.Signer) == 0 || len(r.Product) == 0) {
			errs = append(errs, fmt.Errorf("%w: rule %d: pins neither a measurement nor a signer and product", ErrInvalidPolicy, i))
		}
		if len(r.Signer) > 0 && len(r.Product) == 0 {
			errs = append(errs, fmt.Errorf("%w: rule %d: a signer without a product would admit every product of that signer", ErrInvalidPolicy, i))
		}
	}
	return errors.Join(errs...)
}

// Check returns nil if some rule of p matches id, an error wrapping
// ErrNotAllowed if none does, or the error of Validate.
func (p Policy) Check(id Identity) error {
	if err := p.Validate(); err != nil {
		return err
	}
	for _, r := range p.Allow {
		if r.matches(id) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s", ErrNotAllowed, id)
}

func (r Rule) matches(id Identity) bool {
	switch {
	case r.Kind != id.Kind:
		return false
	case len(r.Measurement) > 0 && !bytes.Equal(r.Measurement, id.Measurement):
		return false
	case len(r.Signer) > 0 && !bytes.Equal(r.Signer, id.Signer):
		return false
	case len(r.Product) > 0 && !bytes.Equal(r.Product, id.Product):
		return false
	case id.SecurityVersion < r.MinSecurityVersion:
		return false
	case id.Debug && !r.AllowDebug:
		return false
	}
	return true
}
