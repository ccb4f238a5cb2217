package nitro_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/nitro"
	"github.com/coterie-mpc/coterie/enclave/nitro/nitrotest"
)

// FuzzParseDocument: the decoder never panics, refuses with ErrMalformed,
// and what it accepts encodes back to a document that decodes the same.
// Verify on the same bytes never panics and accepts only the document
// the test leaf signed.
func FuzzParseDocument(f *testing.F) {
	fx := newFixture(f)
	genuine := fx.doc(f, func(d *nitro.Document) { d.Nonce = []byte("n"); d.PublicKey = []byte("k") })
	genuineDoc, err := nitro.ParseDocument(genuine)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(genuine)
	f.Add(append([]byte{0xd2}, genuine...))
	// Documents AWS signed for other projects' enclaves, one with a
	// definite-length payload map and one with an indefinite-length one.
	for _, g := range genuineDocs {
		f.Add(readDocument(f, g.file))
	}
	f.Add([]byte{0x84, 0x40, 0xa0, 0x40, 0x40})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc, err := nitro.ParseDocument(raw)
		if err != nil {
			if !errors.Is(err, nitro.ErrMalformed) {
				t.Fatalf("ParseDocument error %v is not ErrMalformed", err)
			}
			return
		}
		again, err := nitro.ParseDocument(fx.pki.Sign(t, nitrotest.EncodePayload(t, doc)))
		if err != nil {
			t.Fatalf("re-encoded document does not parse: %v", err)
		}
		if !reflect.DeepEqual(doc, again) {
			t.Fatalf("round trip changed the document:\n%+v\n%+v", doc, again)
		}
		if _, err := fx.v.Verify(context.Background(), enclave.AppendEvidence(nil, enclave.KindNitro, raw), allowA0); err == nil && !reflect.DeepEqual(doc, genuineDoc) {
			t.Fatalf("a document the test leaf never signed verified: %+v", doc)
		}
	})
}
