//go:build nitro

package nsm_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hf/nsm/request"
	"github.com/hf/nsm/response"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/nitro"
	"github.com/coterie-mpc/coterie/enclave/nitro/nitrotest"
	"github.com/coterie-mpc/coterie/enclave/nitro/nsm"
)

// device answers attestation requests with documents of a test PKI that
// carry the request's fields, as the NSM does with the hypervisor's key.
type device struct {
	t    *testing.T
	pki  *nitrotest.PKI
	now  time.Time
	fail response.ErrorCode
	last request.Attestation
}

func (d *device) Send(req request.Request) (response.Response, error) {
	a, ok := req.(*request.Attestation)
	if !ok {
		return response.Response{Error: response.ECInvalidOperation}, nil
	}
	if d.fail != "" {
		return response.Response{Error: d.fail}, nil
	}
	d.last = *a
	doc := d.pki.Document(d.t, nitro.Document{Timestamp: d.now, PCRs: nitrotest.PCRs(0xa0), UserData: a.UserData, Nonce: a.Nonce, PublicKey: a.PublicKey})
	return response.Response{Attestation: &response.Attestation{Document: doc}}, nil
}

func fixture(t *testing.T) (*device, *nsm.Attester, enclave.Policy) {
	now := time.Now()
	d := &device{t: t, pki: nitrotest.NewPKI(t, now), now: now}
	v, err := nitro.New(nitro.Config{Roots: d.pki.Roots(), Clock: clock.NewFake(now), MaxAge: nitro.DefaultMaxAge})
	if err != nil {
		t.Fatal(err)
	}
	return d, nsm.New(d, v), enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindNitro, Measurement: nitrotest.PCR(0xa0)}}}
}

// TestEvidenceVerifies: evidence carries the report data in user_data and
// verifies with package nitro.
func TestEvidenceVerifies(t *testing.T) {
	_, a, p := fixture(t)
	ev, err := a.Evidence(context.Background(), []byte("transfer key hash"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Verify(context.Background(), ev, p)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := enclave.PadReportData([]byte("transfer key hash")); !bytes.Equal(id.ReportData, want) {
		t.Fatalf("ReportData = %x", id.ReportData)
	}
	if _, err := a.Evidence(context.Background(), make([]byte, 65)); !errors.Is(err, enclave.ErrReportDataTooLong) {
		t.Fatalf("Evidence(65 bytes) = %v", err)
	}
}

func TestDocumentCarriesKeyAndNonce(t *testing.T) {
	d, a, _ := fixture(t)
	raw, err := a.Document(context.Background(), []byte("spki"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := nitro.ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	if string(doc.PublicKey) != "spki" || len(doc.Nonce) != 32 || doc.UserData != nil {
		t.Fatalf("document public_key %q, nonce %d bytes, user_data %x", doc.PublicKey, len(doc.Nonce), doc.UserData)
	}
	first := d.last.Nonce
	if _, err := a.Document(context.Background(), []byte("spki")); err != nil || bytes.Equal(first, d.last.Nonce) {
		t.Fatalf("two documents share a nonce (%v)", err)
	}
	id, err := a.Self()
	if err != nil || !bytes.Equal(id.Measurement, nitrotest.PCR(0xa0)) || id.ReportData != nil {
		t.Fatalf("Self = %s, %v", id, err)
	}
}

func TestNSMRefusal(t *testing.T) {
	d, a, _ := fixture(t)
	d.fail = response.ECInternalError
	if _, err := a.Evidence(context.Background(), nil); !errors.Is(err, nsm.ErrNSM) {
		t.Fatalf("Evidence = %v, want ErrNSM", err)
	}
}
