package dataseal

import (
	"bytes"
	"errors"
	"testing"

	"github.com/coterie-mpc/coterie/enclave"
)

func testScope(machine string) enclave.SealScope {
	return enclave.SealScope{
		Kind:           enclave.KindConfidentialSpace,
		Machine:        enclave.HashID("test/machine", []byte(machine)),
		CodeBinding:    enclave.HashID("test/code", []byte("image")),
		ProductBinding: enclave.HashID("test/product", []byte("key")),
	}
}

func TestSealUnseal(t *testing.T) {
	key := Derive([]byte("data key"), "test/seal")
	s, err := New(testScope("m1"), enclave.KeyPolicyCode, key)
	if err != nil {
		t.Fatal(err)
	}
	ad := []byte("record/1")
	blob, err := s.Seal([]byte("secret"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Unseal(blob, ad); err != nil || !bytes.Equal(got, []byte("secret")) {
		t.Fatalf("Unseal = %q, %v", got, err)
	}
	other, _ := New(testScope("m2"), enclave.KeyPolicyCode, key)
	otherKey, _ := New(testScope("m1"), enclave.KeyPolicyCode, Derive([]byte("other data key"), "test/seal"))
	tampered := bytes.Clone(blob)
	tampered[len(tampered)-1] ^= 1
	tests := []struct {
		name string
		s    *Sealer
		blob []byte
		ad   []byte
		want error
	}{
		{"other machine", other, blob, ad, enclave.ErrForeignEnclave},
		{"other key", otherKey, blob, ad, enclave.ErrTampered},
		{"other ad", s, blob, []byte("record/2"), enclave.ErrWrongAssociatedData},
		{"tampered", s, tampered, ad, enclave.ErrTampered},
		{"truncated", s, blob[:enclave.SealedHeaderSize+3], ad, enclave.ErrMalformedBlob},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.s.Unseal(tt.blob, tt.ad); !errors.Is(err, tt.want) {
				t.Fatalf("Unseal = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	if _, err := New(testScope("m"), enclave.KeyPolicyCode, make([]byte, 16)); err == nil {
		t.Error("New accepted a 16-byte key")
	}
	if _, err := New(testScope("m"), enclave.KeyPolicyUnknown, make([]byte, KeySize)); err == nil {
		t.Error("New accepted an invalid key policy")
	}
	if bytes.Equal(Derive([]byte("k"), "a"), Derive([]byte("k"), "b")) {
		t.Error("Derive ignores info")
	}
}
