package cms_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/coterie-mpc/coterie/enclave/nitro/cms"
	"github.com/coterie-mpc/coterie/enclave/nitro/nitrotest"
)

var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func TestOpenRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 32, 100, 4096} {
		pt := make([]byte, n)
		rand.Read(pt)
		got, err := cms.Open(nitrotest.Envelope(t, &testKey().PublicKey, pt), testKey())
		if err != nil {
			t.Fatalf("Open(%d bytes) = %v", n, err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("Open(%d bytes) returned other plaintext", n)
		}
	}
}

// TestParseKMSSample parses an envelope that AWS KMS sent to a Nitro
// enclave (published in RustCrypto/formats issue 779): BER with
// indefinite lengths, a subject key identifier, a constructed content.
// Its private key is unknown, so opening it with another key must fail
// with ErrDecrypt, not ErrMalformed.
func TestParseKMSSample(t *testing.T) {
	sample, err := os.ReadFile("testdata/kms-ciphertext-for-recipient.ber")
	if err != nil {
		t.Fatal(err)
	}
	e, err := cms.Parse(sample)
	if err != nil {
		t.Fatalf("Parse(KMS sample) = %v", err)
	}
	if len(e.WrappedKey) != 256 || len(e.IV) != 16 || len(e.Content) != 16 {
		t.Fatalf("Parse(KMS sample) = wrapped key %d, IV %d, content %d bytes; want 256, 16, 16", len(e.WrappedKey), len(e.IV), len(e.Content))
	}
	if _, err := cms.Open(sample, testKey()); !errors.Is(err, cms.ErrDecrypt) {
		t.Fatalf("Open(KMS sample, other key) = %v, want ErrDecrypt", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	pub := &testKey().PublicKey
	good := nitrotest.Envelope(t, pub, bytes.Repeat([]byte{7}, 32))
	replace := func(old, new []byte) []byte {
		t.Helper()
		if !bytes.Contains(good, old) {
			t.Fatalf("envelope has no %x", old)
		}
		return bytes.ReplaceAll(good, old, new)
	}
	flipAt := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 1
		return b
	}
	wrappedAt := bytes.Index(good, []byte{0x04, 0x82, 0x01, 0x00}) + 4
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		envelope []byte
		key      *rsa.PrivateKey
		want     error
	}{
		{"empty", nil, testKey(), cms.ErrMalformed},
		{"truncated", good[:len(good)-3], testKey(), cms.ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0), testKey(), cms.ErrMalformed},
		{"too large", make([]byte, cms.MaxEnvelopeSize+1), testKey(), cms.ErrMalformed},
		{"signed data", replace([]byte{0x01, 0x07, 0x03}, []byte{0x01, 0x07, 0x02}), testKey(), cms.ErrMalformed},
		{"version 3", replace([]byte{0x02, 0x01, 0x02, 0x31}, []byte{0x02, 0x01, 0x03, 0x31}), testKey(), cms.ErrMalformed},
		{"rsa pkcs1 v1.5", replace([]byte{0x01, 0x01, 0x07}, []byte{0x01, 0x01, 0x01}), testKey(), cms.ErrUnsupported},
		{"oaep sha384", replace([]byte{0x04, 0x02, 0x01}, []byte{0x04, 0x02, 0x02}), testKey(), cms.ErrUnsupported},
		{"aes-128-cbc", replace([]byte{0x04, 0x01, 0x2a}, []byte{0x04, 0x01, 0x02}), testKey(), cms.ErrUnsupported},
		{"wrapped key altered", flipAt(wrappedAt + 10), testKey(), cms.ErrDecrypt},
		{"other key", good, otherKey, cms.ErrDecrypt},
		{"bad padding", nitrotest.EnvelopeUnpadded(t, pub, bytes.Repeat([]byte{0x11}, 32)), testKey(), cms.ErrDecrypt},
		{"zero padding", nitrotest.EnvelopeUnpadded(t, pub, make([]byte, 16)), testKey(), cms.ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := cms.Open(tt.envelope, tt.key); !errors.Is(err, tt.want) {
				t.Fatalf("Open = %x, %v; want %v", got, err, tt.want)
			}
		})
	}
}
