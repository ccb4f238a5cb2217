//go:build ego

package sgx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/edgelesssys/ego/attestation"
	"github.com/edgelesssys/ego/ecrypto"
	egoenclave "github.com/edgelesssys/ego/enclave"

	"github.com/coterie-mpc/coterie/enclave"
)

// Errors of New.
var (
	// ErrNotInEnclave is returned by New when the process does not run in a
	// real SGX enclave (a plain build, or EGo's simulation mode), where EGo
	// would seal with an all-zero key.
	ErrNotInEnclave = errors.New("sgx: not running inside an SGX enclave; refusing to seal with EGo's all-zero fallback key")

	// ErrDebugEnclave is returned by New for a debug enclave, whose memory
	// the host can read, unless Config.AllowDebug is set.
	ErrDebugEnclave = errors.New("sgx: running in a debug enclave, whose memory the host can read")
)

// Config configures the SGX backend.
type Config struct {
	// KeyPolicy is what Seal binds keys to.
	KeyPolicy enclave.KeyPolicy
	// AllowDebug lets New run in a debug enclave, for development on SGX
	// hardware.
	AllowDebug bool
	// Logger receives lifecycle messages.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with KeyPolicyProduct, so that sealed data
// survives upgrades signed by the same key.
func DefaultConfig() Config {
	return Config{KeyPolicy: enclave.KeyPolicyProduct, Logger: slog.Default()}
}

// Validate reports every problem with c at once, or nil.
func (c Config) Validate() error {
	var errs []error
	if !c.KeyPolicy.Valid() {
		errs = append(errs, fmt.Errorf("sgx: invalid KeyPolicy %s", c.KeyPolicy))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("sgx: Logger is nil"))
	}
	return errors.Join(errs...)
}

// Enclave is the SGX backend. All methods are safe for concurrent use.
type Enclave struct {
	policy enclave.KeyPolicy
	scope  enclave.SealScope
	self   enclave.Identity
}

var _ enclave.Enclave = (*Enclave)(nil)

// New checks that the process runs in a real SGX enclave and returns the
// backend, or ErrNotInEnclave.
func New(cfg Config) (*Enclave, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	report, err := egoenclave.GetSelfReport()
	if err != nil {
		return nil, fmt.Errorf("%w: self report: %w", ErrNotInEnclave, err)
	}
	keyID, err := egoenclave.GetSealKeyID()
	if err != nil {
		return nil, fmt.Errorf("%w: seal key id: %w", ErrNotInEnclave, err)
	}
	if len(keyID) == 0 || bytes.Equal(keyID, make([]byte, len(keyID))) {
		return nil, fmt.Errorf("%w: the seal key id is zero (simulation mode)", ErrNotInEnclave)
	}
	if report.Debug && !cfg.AllowDebug {
		return nil, ErrDebugEnclave
	}
	e := &Enclave{policy: cfg.KeyPolicy, self: identity(report)}
	e.self.ReportData = nil
	e.scope = enclave.SealScope{
		Kind:           enclave.KindSGX,
		Machine:        enclave.HashID("coterie/sgx/v1/machine", keyID),
		CodeBinding:    enclave.HashID("coterie/sgx/v1/code", report.UniqueID),
		ProductBinding: enclave.HashID("coterie/sgx/v1/product", report.SignerID, report.ProductID),
	}
	cfg.Logger.Info("sgx enclave ready", "identity", e.self.String(), "key_policy", cfg.KeyPolicy)
	return e, nil
}

func identity(r attestation.Report) enclave.Identity {
	return enclave.Identity{
		Kind:            enclave.KindSGX,
		Measurement:     r.UniqueID,
		Signer:          r.SignerID,
		Product:         r.ProductID,
		SecurityVersion: uint32(r.SecurityVersion),
		Debug:           r.Debug,
		ReportData:      r.Data,
	}
}

// Kind returns enclave.KindSGX.
func (e *Enclave) Kind() enclave.Kind { return enclave.KindSGX }

// KeyPolicy returns the policy Seal uses.
func (e *Enclave) KeyPolicy() enclave.KeyPolicy { return e.policy }

// Self returns this enclave's own identity, with no report data.
func (e *Enclave) Self() enclave.Identity { return e.self }

// Seal implements enclave.Sealer with EGo's 256-bit sealing.
func (e *Enclave) Seal(plaintext, ad []byte) ([]byte, error) {
	header := e.scope.Header(e.policy, ad).Append(nil)
	seal := ecrypto.SealWithProductKey256
	if e.policy == enclave.KeyPolicyCode {
		seal = ecrypto.SealWithUniqueKey256
	}
	payload, err := seal(plaintext, aeadData(header, ad))
	if err != nil {
		return nil, fmt.Errorf("sgx: seal: %w", err)
	}
	return append(header, payload...), nil
}

// Unseal implements enclave.Sealer.
func (e *Enclave) Unseal(blob, ad []byte) ([]byte, error) {
	h, header, payload, err := enclave.ParseSealed(blob)
	if err != nil {
		return nil, err
	}
	if err := e.scope.Check(h, ad); err != nil {
		return nil, err
	}
	plaintext, err := ecrypto.Unseal256(payload, aeadData(header, ad))
	if err != nil {
		// EGo's key info is inside the payload, so a damaged payload and a
		// wrong key look alike here; the header already ruled out another
		// machine or build.
		return nil, enclave.ErrTampered
	}
	return plaintext, nil
}

func aeadData(header, ad []byte) []byte {
	return append(header[:len(header):len(header)], ad...)
}

// Evidence implements enclave.Attester with an SGX remote report.
func (e *Enclave) Evidence(_ context.Context, reportData []byte) ([]byte, error) {
	rd, err := enclave.PadReportData(reportData)
	if err != nil {
		return nil, err
	}
	report, err := egoenclave.GetRemoteReport(rd)
	if err != nil {
		return nil, fmt.Errorf("sgx: remote report: %w", err)
	}
	return enclave.AppendEvidence(nil, enclave.KindSGX, report), nil
}

// Verify implements enclave.Verifier for SGX evidence. A report whose TCB
// level is not up to date does not verify.
func (e *Enclave) Verify(_ context.Context, evidence []byte, p enclave.Policy) (enclave.Identity, error) {
	if err := p.Validate(); err != nil {
		return enclave.Identity{}, err
	}
	kind, payload, err := enclave.ParseEvidence(evidence)
	if err != nil {
		return enclave.Identity{}, err
	}
	if kind != enclave.KindSGX {
		return enclave.Identity{}, fmt.Errorf("%w: the sgx verifier got %s evidence", enclave.ErrUnsupportedKind, kind)
	}
	report, err := egoenclave.VerifyRemoteReport(payload)
	if errors.Is(err, attestation.ErrTCBLevelInvalid) {
		return enclave.Identity{}, fmt.Errorf("%w: TCB status %s", enclave.ErrEvidenceUnverified, report.TCBStatus)
	}
	if err != nil {
		return enclave.Identity{}, fmt.Errorf("%w: %w", enclave.ErrEvidenceUnverified, err)
	}
	id := identity(report)
	if err := p.Check(id); err != nil {
		return enclave.Identity{}, err
	}
	return id, nil
}
