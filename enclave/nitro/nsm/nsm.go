//go:build nitro

package nsm

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	hfnsm "github.com/hf/nsm"
	"github.com/hf/nsm/request"
	"github.com/hf/nsm/response"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/nitro"
)

// ErrNSM is returned when the NSM answers a request with an error, or
// with no document.
var ErrNSM = errors.New("nsm: the Nitro Secure Module refused the attestation request")

// Device sends requests to the NSM. *hfnsm.Session implements it; it must
// be safe for concurrent use.
type Device interface {
	Send(req request.Request) (response.Response, error)
}

// nonceSize is the size of the random nonce in Recipient documents.
const nonceSize = 32

// Attester makes attestation documents with the NSM and verifies peers'
// evidence with a Verifier. It is safe for concurrent use.
type Attester struct {
	enclave.Verifier
	dev Device
}

var _ enclave.Attester = (*Attester)(nil)

// Open opens the NSM device and returns an Attester that verifies peers'
// evidence with v. Close releases the device.
func Open(v enclave.Verifier) (*Attester, func() error, error) {
	s, err := hfnsm.OpenDefaultSession()
	if err != nil {
		return nil, nil, fmt.Errorf("nsm: open /dev/nsm (is this a Nitro enclave?): %w", err)
	}
	return New(s, v), s.Close, nil
}

// New returns an Attester on dev that verifies peers' evidence with v.
func New(dev Device, v enclave.Verifier) *Attester { return &Attester{Verifier: v, dev: dev} }

// Kind returns enclave.KindNitro.
func (a *Attester) Kind() enclave.Kind { return enclave.KindNitro }

// Evidence returns a framed attestation document whose user_data is
// reportData padded to enclave.MaxReportData bytes.
func (a *Attester) Evidence(_ context.Context, reportData []byte) ([]byte, error) {
	rd, err := enclave.PadReportData(reportData)
	if err != nil {
		return nil, err
	}
	doc, err := a.attest(&request.Attestation{UserData: rd})
	if err != nil {
		return nil, err
	}
	return enclave.AppendEvidence(nil, enclave.KindNitro, doc), nil
}

// Document returns a raw attestation document with publicKey in
// public_key and a random nonce, for a KMS Recipient.
func (a *Attester) Document(_ context.Context, publicKey []byte) ([]byte, error) {
	nonce := make([]byte, nonceSize)
	rand.Read(nonce)
	return a.attest(&request.Attestation{PublicKey: publicKey, Nonce: nonce})
}

// Self returns the enclave's identity as its own documents show it, with
// no report data.
func (a *Attester) Self() (enclave.Identity, error) {
	raw, err := a.attest(&request.Attestation{})
	if err != nil {
		return enclave.Identity{}, err
	}
	doc, err := nitro.ParseDocument(raw)
	if err != nil {
		return enclave.Identity{}, fmt.Errorf("nsm: own document: %w", err)
	}
	id := nitro.Identity(doc)
	id.ReportData = nil
	return id, nil
}

func (a *Attester) attest(req *request.Attestation) ([]byte, error) {
	res, err := a.dev.Send(req)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrNSM, err)
	case res.Error != "":
		return nil, fmt.Errorf("%w: %s", ErrNSM, res.Error)
	case res.Attestation == nil || len(res.Attestation.Document) == 0:
		return nil, fmt.Errorf("%w: no document in the answer", ErrNSM)
	}
	// The session reuses its response buffers.
	return bytes.Clone(res.Attestation.Document), nil
}
