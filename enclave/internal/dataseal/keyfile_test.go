package dataseal_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/coterie-mpc/coterie/enclave/internal/dataseal"
)

// FuzzParseKeyFile: a data key file sits on disk outside the enclave's
// trust, so its decoder takes hostile input. It never panics, refuses only
// with ErrBadKeyFile, and what it accepts encodes back to the same bytes.
func FuzzParseKeyFile(f *testing.F) {
	const magic = "CTXK"
	good := dataseal.KeyFile{Check: bytes.Repeat([]byte{1}, dataseal.KeySize), KeyName: "arn:aws:kms:eu-west-1:111122223333:key/k", Ciphertext: []byte("blob")}
	f.Add(good.Encode(magic))
	f.Add([]byte(magic + "\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := dataseal.ParseKeyFile(b, magic)
		if err != nil {
			if !errors.Is(err, dataseal.ErrBadKeyFile) {
				t.Fatalf("error %v is not ErrBadKeyFile", err)
			}
			return
		}
		if !bytes.Equal(got.Encode(magic), b) {
			t.Fatalf("round trip changed the file")
		}
	})
}
