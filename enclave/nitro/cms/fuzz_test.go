package cms_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/coterie-mpc/coterie/enclave/nitro/cms"
	"github.com/coterie-mpc/coterie/enclave/nitro/nitrotest"
)

// FuzzOpen: the decoder never panics, refuses only with its sentinels, and
// any envelope it opens with the test key yields plaintext that a fresh
// envelope carries back unchanged.
func FuzzOpen(f *testing.F) {
	key := testKey()
	f.Add(nitrotest.Envelope(f, &key.PublicKey, []byte("a 32-byte data key, for example")))
	f.Add(nitrotest.Envelope(f, &key.PublicKey, nil))
	if sample, err := os.ReadFile("testdata/kms-ciphertext-for-recipient.ber"); err == nil {
		f.Add(sample)
	}
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	f.Add([]byte{0x30, 0x80, 0x30, 0x80, 0x30, 0x80})
	f.Fuzz(func(t *testing.T, envelope []byte) {
		pt, err := cms.Open(envelope, key)
		if err != nil {
			if !errors.Is(err, cms.ErrMalformed) && !errors.Is(err, cms.ErrUnsupported) && !errors.Is(err, cms.ErrDecrypt) {
				t.Fatalf("Open error %v is not a sentinel of cms", err)
			}
			return
		}
		again, err := cms.Open(nitrotest.Envelope(t, &key.PublicKey, pt), key)
		if err != nil || !bytes.Equal(again, pt) {
			t.Fatalf("round trip of opened plaintext: %v", err)
		}
	})
}
