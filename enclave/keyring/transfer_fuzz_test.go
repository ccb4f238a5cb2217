package keyring

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/enclavetest"
)

func testReceiver(t testing.TB, m *enclavetest.Machine, dir string) (*Receiver, enclave.Enclave) {
	t.Helper()
	e := m.Enclave(dir, nil)
	r, err := NewReceiver(context.Background(), e, testBind)
	if err != nil {
		t.Fatal(err)
	}
	return r, e
}

// FuzzParseRequest checks that the transfer request decoder never panics,
// fails only with ErrMalformedRequest, and round-trips what it accepts; and
// that Wrap never panics on a request and fails with a typed error.
func FuzzParseRequest(f *testing.F) {
	m := enclavetest.NewMachine(f)
	r, e := testReceiver(f, m, f.TempDir())
	k := mustGenerate(f)
	policy := enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindSim, Measurement: enclavetest.TestMeasurement}}}
	f.Add(r.Request())
	f.Add([]byte("CTKQ\x01\x00\x20\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := parseRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedRequest) {
				t.Fatalf("untyped error %v", err)
			}
		} else if again := req.append(nil); !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x != %x", again, b)
		}
		_, _, err = k.Wrap(context.Background(), e, policy, b, testBind)
		if err != nil && !errors.Is(err, ErrMalformedRequest) && !errors.Is(err, ErrKeyNotBound) &&
			!errors.Is(err, enclave.ErrMalformedEvidence) && !errors.Is(err, enclave.ErrEvidenceUnverified) &&
			!errors.Is(err, enclave.ErrNotAllowed) && !errors.Is(err, enclave.ErrUnsupportedKind) {
			t.Fatalf("Wrap: untyped error %v", err)
		}
	})
}

// FuzzUnwrap checks that the wrapped-keyring decoder never panics, fails
// only with ErrMalformedWrapped, and round-trips what it accepts; and that
// Unwrap fails with a typed error on anything but the real thing.
func FuzzUnwrap(f *testing.F) {
	m := enclavetest.NewMachine(f)
	r, e := testReceiver(f, m, f.TempDir())
	k := mustGenerate(f)
	policy := enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindSim, Measurement: enclavetest.TestMeasurement}}}
	w, _, err := k.Wrap(context.Background(), e, policy, r.Request(), testBind)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(w)
	f.Add([]byte("CTKW\x01\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parsed, err := parseWrapped(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedWrapped) {
				t.Fatalf("untyped error %v", err)
			}
		} else if again := parsed.append(nil); !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x != %x", again, b)
		}
		got, err := r.Unwrap(b)
		switch {
		case err == nil && !bytes.Equal(b, w):
			// HPKE authenticates everything, so only the genuine
			// wrapped keyring opens.
			t.Fatalf("Unwrap accepted a modified wrapped keyring")
		case err == nil && !bytes.Equal(got.marshal(), k.marshal()):
			t.Fatalf("Unwrap returned another keyring")
		case err != nil && !errors.Is(err, ErrMalformedWrapped) && !errors.Is(err, ErrUnwrap) && !errors.Is(err, ErrMalformedKeyring):
			t.Fatalf("Unwrap: untyped error %v", err)
		}
	})
}
