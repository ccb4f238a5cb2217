package enclave_test

import (
	"context"
	"errors"
	"testing"

	"github.com/coterie-mpc/coterie/enclave"
)

// kindVerifier admits any evidence and reports its own kind.
type kindVerifier enclave.Kind

func (k kindVerifier) Verify(context.Context, []byte, enclave.Policy) (enclave.Identity, error) {
	return enclave.Identity{Kind: enclave.Kind(k)}, nil
}

func TestVerifiersDispatchByKind(t *testing.T) {
	vs := enclave.Verifiers{enclave.KindSim: kindVerifier(enclave.KindSim), enclave.KindNitro: kindVerifier(enclave.KindNitro)}
	for _, k := range []enclave.Kind{enclave.KindSim, enclave.KindNitro} {
		id, err := vs.Verify(context.Background(), enclave.AppendEvidence(nil, k, []byte{1}), enclave.Policy{})
		if err != nil || id.Kind != k {
			t.Errorf("Verify(%s evidence) = %s, %v", k, id.Kind, err)
		}
	}
	if _, err := vs.Verify(context.Background(), enclave.AppendEvidence(nil, enclave.KindSGX, []byte{1}), enclave.Policy{}); !errors.Is(err, enclave.ErrUnsupportedKind) {
		t.Errorf("Verify(sgx evidence) = %v, want ErrUnsupportedKind", err)
	}
	if _, err := vs.Verify(context.Background(), []byte("junk"), enclave.Policy{}); !errors.Is(err, enclave.ErrMalformedEvidence) {
		t.Errorf("Verify(junk) = %v, want ErrMalformedEvidence", err)
	}
}
