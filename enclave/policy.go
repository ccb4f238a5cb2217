package enclave

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// Sizes of the measurements that policy rules pin, per kind.
const (
	// NitroPCRSize is the size of a Nitro PCR: a SHA-384 digest.
	NitroPCRSize = 48
	// ImageDigestSize is the size of a Confidential Space container image
	// digest: a SHA-256 digest.
	ImageDigestSize = 32
	// MaxPCRIndex is the highest PCR index a Nitro document can carry.
	MaxPCRIndex = 31
)

// Identity is what verified evidence proves about a peer enclave. Its fields
// are public values; none is secret.
type Identity struct {
	// Kind is the peer's enclave kind.
	Kind Kind
	// Measurement identifies the exact code: SGX MRENCLAVE, Nitro PCR0, a
	// Confidential Space image digest, the sim's executable hash.
	Measurement []byte
	// Signer identifies who signed the code: SGX MRSIGNER, Nitro PCR8 (the
	// hash of the EIF's signing certificate), the sim's configured signer.
	// Confidential Space has none.
	Signer []byte
	// PCRs are a Nitro enclave's other platform configuration registers,
	// by index (PCR1 kernel and boot ramfs, PCR2 application, PCR3 the
	// parent's IAM role, PCR4 the parent instance). Nil for other kinds.
	PCRs map[uint32][]byte
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
	var pcrs strings.Builder
	for _, i := range slices.Sorted(maps.Keys(id.PCRs)) {
		fmt.Fprintf(&pcrs, " pcr%d=%x", i, id.PCRs[i])
	}
	return fmt.Sprintf("%s measurement=%x signer=%x product=%x svn=%d debug=%t%s",
		id.Kind, id.Measurement, id.Signer, id.Product, id.SecurityVersion, id.Debug, pcrs.String())
}

// Policy is the set of enclave identities a cluster lets in: a peer is
// allowed if any rule matches it.
type Policy struct {
	Allow []Rule
}

// Rule matches enclave identities of one kind. Set fields must match
// exactly. What a rule must pin depends on its kind:
//
//   - sim and sgx: the exact code (Measurement), or the signer and product
//     (Signer and Product), or both;
//   - nitro: PCR0 (Measurement) or PCR8 (Signer), or both, and any of
//     PCR1 to PCR4 in PCRs; PCR0 and PCR8 go only in Measurement and Signer;
//   - confidential-space: the container image digest (Measurement), and
//     optionally whose tokens and which machines it admits (Issuer and
//     HardwareModels).
type Rule struct {
	Kind        Kind
	Measurement []byte
	Signer      []byte
	Product     []byte
	// PCRs pins further Nitro PCRs by index (1 to 4).
	PCRs map[uint32][]byte
	// MinSecurityVersion is the lowest security version accepted.
	MinSecurityVersion uint32
	// AllowDebug admits debug enclaves, whose memory the host can read.
	AllowDebug bool
	// Issuer is, for a confidential-space rule, the https URL of the
	// attestation service whose tokens the rule admits; empty means
	// Google's. It is a trust anchor: its OpenID configuration supplies
	// the keys that tokens are checked with.
	Issuer string
	// HardwareModels are, for a confidential-space rule, the hwmodel values
	// it admits; empty means AMD SEV and Intel TDX.
	//
	// Issuer and HardwareModels describe the token, not the Identity it
	// proves, so Check does not look at them: the confidential-space
	// verifier (package gcpcs) applies them, and hands Check only the
	// rules that admit the token's issuer and hardware model.
	HardwareModels []string
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
	for _, i := range slices.Sorted(maps.Keys(r.PCRs)) {
		fmt.Fprintf(&b, " pcr%d=%x", i, r.PCRs[i])
	}
	if r.Issuer != "" {
		b.WriteString(" issuer=" + r.Issuer)
	}
	if len(r.HardwareModels) > 0 {
		b.WriteString(" hardware-models=" + strings.Join(r.HardwareModels, ","))
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
		for _, problem := range r.problems() {
			errs = append(errs, fmt.Errorf("%w: rule %d: %s", ErrInvalidPolicy, i, problem))
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

// problems lists what is wrong with r for its kind.
func (r Rule) problems() []string {
	var out []string
	switch r.Kind {
	case KindSim, KindSGX:
		if len(r.Measurement) == 0 && (len(r.Signer) == 0 || len(r.Product) == 0) {
			out = append(out, "pins neither a measurement nor a signer and product")
		}
		if len(r.Signer) > 0 && len(r.Product) == 0 {
			out = append(out, "a signer without a product would admit every product of that signer")
		}
		if len(r.PCRs) > 0 {
			out = append(out, fmt.Sprintf("PCRs are for nitro rules, not %s", r.Kind))
		}
	case KindNitro:
		if len(r.Measurement) == 0 && len(r.Signer) == 0 {
			out = append(out, "pins neither PCR0 (measurement) nor PCR8 (signer)")
		}
		for name, v := range map[string][]byte{"measurement (PCR0)": r.Measurement, "signer (PCR8)": r.Signer} {
			switch {
			case len(v) > 0 && len(v) != NitroPCRSize:
				out = append(out, fmt.Sprintf("%s has %d bytes, want %d", name, len(v), NitroPCRSize))
			case len(v) > 0 && AllZero(v):
				// A debug enclave's PCRs, and an unsigned image's PCR8,
				// are all zeros: such a pin admits any code.
				out = append(out, fmt.Sprintf("%s is all zeros, which any debug enclave or unsigned image shows", name))
			}
		}
		if r.AllowDebug {
			out = append(out, "a debug nitro enclave measures as all zeros, so allow_debug would admit any code")
		}
		if len(r.Product) > 0 || r.MinSecurityVersion > 0 {
			out = append(out, "nitro has no product or security version")
		}
		for _, i := range slices.Sorted(maps.Keys(r.PCRs)) {
			switch {
			case i == 0 || i == 8:
				out = append(out, fmt.Sprintf("PCR%d goes in the rule's %s", i, map[uint32]string{0: "measurement", 8: "signer"}[i]))
			case i > 4:
				out = append(out, fmt.Sprintf("PCR%d is not one a rule pins (1 to 4)", i))
			case len(r.PCRs[i]) != NitroPCRSize:
				out = append(out, fmt.Sprintf("PCR%d has %d bytes, want %d", i, len(r.PCRs[i]), NitroPCRSize))
			case AllZero(r.PCRs[i]):
				out = append(out, fmt.Sprintf("PCR%d is all zeros, which any debug enclave shows", i))
			}
		}
	case KindConfidentialSpace:
		if len(r.Measurement) != ImageDigestSize {
			out = append(out, fmt.Sprintf("measurement (the image digest) has %d bytes, want %d", len(r.Measurement), ImageDigestSize))
		}
		if len(r.Signer) > 0 || len(r.Product) > 0 || r.MinSecurityVersion > 0 || len(r.PCRs) > 0 {
			out = append(out, "a confidential-space rule pins the image digest only")
		}
		if r.Issuer != "" {
			if problem := issuerProblem(r.Issuer); problem != "" {
				out = append(out, problem)
			}
		}
		for _, m := range r.HardwareModels {
			if m == "" || strings.ContainsFunc(m, func(c rune) bool { return c <= ' ' || c > '~' }) {
				out = append(out, fmt.Sprintf("hardware model %q is empty or not printable ASCII", m))
			}
		}
	default:
		out = append(out, fmt.Sprintf("unknown enclave kind %s", r.Kind))
	}
	if r.Kind != KindConfidentialSpace && (r.Issuer != "" || len(r.HardwareModels) > 0) {
		out = append(out, fmt.Sprintf("issuer and hardware models are for confidential-space rules, not %s", r.Kind))
	}
	slices.Sort(out)
	return out
}

// issuerProblem says what is wrong with a confidential-space rule's
// issuer, or "". The issuer must be an https URL without query, fragment
// or credentials: its OpenID configuration is fetched from it, and a token
// names it in iss exactly.
func issuerProblem(issuer string) string {
	u, err := url.Parse(issuer)
	switch {
	case err != nil:
		return fmt.Sprintf("issuer %q is not a URL", issuer)
	case u.Scheme != "https" || u.Host == "":
		return fmt.Sprintf("issuer %q is not an https URL", issuer)
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Sprintf("issuer %q has credentials, a query or a fragment", issuer)
	}
	return ""
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
	for i, v := range r.PCRs {
		if !bytes.Equal(v, id.PCRs[i]) {
			return false
		}
	}
	return true
}

// AllZero reports whether b is empty or holds only zero bytes, as the
// measurements of a Nitro enclave started in debug mode, or the PCR8 of an
// unsigned image, do.
func AllZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
