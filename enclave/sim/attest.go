package sim

import (
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"fmt"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/internal/wire"
)

// A sim statement is fixed-size, so its decoder is trivially canonical:
//
//	measurement (32) | signer (32) | product (16) | security version (4) |
//	report data (64) | platform key (32) | Ed25519 signature (64)
//
// The platform key signs everything before the signature, prefixed with
// statementDomain.
const (
	productSize     = 16
	statementSigned = 32 + 32 + productSize + 4 + enclave.MaxReportData + ed25519.PublicKeySize
	statementSize   = statementSigned + ed25519.SignatureSize
	statementDomain = "coterie/sim/v1/attestation-statement\x00"
)

// Evidence implements enclave.Attester: an Ed25519 statement by this
// machine's platform key over this enclave's identity and reportData.
func (e *Enclave) Evidence(_ context.Context, reportData []byte) ([]byte, error) {
	rd, err := enclave.PadReportData(reportData)
	if err != nil {
		return nil, err
	}
	st := statement{id: e.self, platform: e.PlatformKey()}
	st.id.ReportData = rd
	st.signed = st.appendSigned(make([]byte, 0, statementSize))
	st.sig = ed25519.Sign(e.platform, append([]byte(statementDomain), st.signed...))
	return enclave.AppendEvidence(nil, enclave.KindSim, append(st.signed, st.sig...)), nil
}

// statement is a parsed sim statement.
type statement struct {
	id       enclave.Identity
	platform ed25519.PublicKey
	signed   []byte
	sig      []byte
}

// appendSigned appends the part of the statement that the platform key
// signs.
func (st statement) appendSigned(b []byte) []byte {
	b = append(b, st.id.Measurement...)
	b = append(b, st.id.Signer...)
	b = append(b, st.id.Product...)
	b = wire.AppendU32(b, st.id.SecurityVersion)
	b = append(b, st.id.ReportData...)
	return append(b, st.platform...)
}

// parseStatement decodes a sim evidence payload, or returns an error
// wrapping enclave.ErrMalformedEvidence.
func parseStatement(payload []byte) (statement, error) {
	if len(payload) != statementSize {
		return statement{}, fmt.Errorf("%w: sim statement has %d bytes, want %d", enclave.ErrMalformedEvidence, len(payload), statementSize)
	}
	r := wire.NewReader(payload)
	st := statement{id: enclave.Identity{Kind: enclave.KindSim}}
	st.id.Measurement = clone(r.Fixed(32))
	st.id.Signer = clone(r.Fixed(32))
	st.id.Product = clone(r.Fixed(productSize))
	st.id.SecurityVersion = r.U32()
	st.id.ReportData = clone(r.Fixed(enclave.MaxReportData))
	st.platform = ed25519.PublicKey(clone(r.Fixed(ed25519.PublicKeySize)))
	st.sig = r.Fixed(ed25519.SignatureSize)
	if err := r.Done(); err != nil {
		return statement{}, fmt.Errorf("%w: %w", enclave.ErrMalformedEvidence, err)
	}
	st.signed = payload[:statementSigned]
	return st, nil
}

// Verify implements enclave.Verifier for sim evidence. The statement must be
// signed by a trusted platform key: this machine's or one in
// Config.TrustedPlatforms.
func (e *Enclave) Verify(_ context.Context, evidence []byte, p enclave.Policy) (enclave.Identity, error) {
	if err := p.Validate(); err != nil {
		return enclave.Identity{}, err
	}
	kind, payload, err := enclave.ParseEvidence(evidence)
	if err != nil {
		return enclave.Identity{}, err
	}
	if kind != enclave.KindSim {
		return enclave.Identity{}, fmt.Errorf("%w: the sim verifier got %s evidence", enclave.ErrUnsupportedKind, kind)
	}
	st, err := parseStatement(payload)
	if err != nil {
		return enclave.Identity{}, err
	}
	if !ed25519.Verify(st.platform, append([]byte(statementDomain), st.signed...), st.sig) {
		return enclave.Identity{}, fmt.Errorf("%w: bad sim platform signature", enclave.ErrEvidenceUnverified)
	}
	if !e.trusts(st.platform) {
		return enclave.Identity{}, fmt.Errorf("%w: sim platform key %x is not trusted", enclave.ErrEvidenceUnverified, []byte(st.platform))
	}
	if err := p.Check(st.id); err != nil {
		return enclave.Identity{}, err
	}
	return st.id, nil
}

func (e *Enclave) trusts(k ed25519.PublicKey) bool {
	for _, t := range e.trusted {
		if subtle.ConstantTimeCompare(t, k) == 1 {
			return true
		}
	}
	return false
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
