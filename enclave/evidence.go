package enclave

import (
	"fmt"

	"github.com/coterie-mpc/coterie/enclave/internal/wire"
)

// Evidence of every kind travels in one frame, so a node can see which
// verifier a peer's evidence needs:
//
//	magic "CTEV" | version 1 | kind | payload
//
// The payload is the backend's own: an SGX quote, a Nitro attestation
// document, a Confidential Space token, a sim statement.
const (
	evidenceMagic   = "CTEV"
	evidenceVersion = 1
)

// MaxEvidenceSize bounds the evidence a decoder accepts. SGX quotes with
// their collateral and Nitro documents with certificate chains fit well
// within it.
const MaxEvidenceSize = 64 << 10

// AppendEvidence frames a backend's evidence payload of kind k.
func AppendEvidence(b []byte, k Kind, payload []byte) []byte {
	b = append(b, evidenceMagic...)
	b = append(b, evidenceVersion, byte(k))
	return append(b, payload...)
}

// ParseEvidence returns the kind and the payload of framed evidence, or an
// error wrapping ErrMalformedEvidence. The payload aliases evidence and is
// never empty.
func ParseEvidence(evidence []byte) (Kind, []byte, error) {
	if len(evidence) > MaxEvidenceSize {
		return KindUnknown, nil, fmt.Errorf("%w: %d bytes is over the %d limit", ErrMalformedEvidence, len(evidence), MaxEvidenceSize)
	}
	r := wire.NewReader(evidence)
	magic := r.Fixed(len(evidenceMagic))
	version := r.U8()
	k := Kind(r.U8())
	switch {
	case r.Err() != nil:
		return KindUnknown, nil, fmt.Errorf("%w: %d bytes is shorter than the header", ErrMalformedEvidence, len(evidence))
	case string(magic) != evidenceMagic:
		return KindUnknown, nil, fmt.Errorf("%w: bad magic", ErrMalformedEvidence)
	case version != evidenceVersion:
		return KindUnknown, nil, fmt.Errorf("%w: unsupported version %d", ErrMalformedEvidence, version)
	case !k.Valid():
		return KindUnknown, nil, fmt.Errorf("%w: unknown enclave kind %d", ErrMalformedEvidence, uint8(k))
	case r.Len() == 0:
		return KindUnknown, nil, fmt.Errorf("%w: no payload", ErrMalformedEvidence)
	}
	return k, r.Rest(), nil
}

// PadReportData returns reportData padded with zeros to MaxReportData bytes,
// or an error wrapping ErrReportDataTooLong.
func PadReportData(reportData []byte) ([]byte, error) {
	if len(reportData) > MaxReportData {
		return nil, fmt.Errorf("%w: %d bytes", ErrReportDataTooLong, len(reportData))
	}
	out := make([]byte, MaxReportData)
	copy(out, reportData)
	return out, nil
}
