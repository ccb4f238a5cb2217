package kmsseal

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseDataKeyFile: the data key file sits on the VM's disk, outside
// the workload's trust, so its decoder takes hostile input. It never
// panics, refuses only with ErrBadDataKeyFile, and what it accepts encodes
// back to the same bytes.
func FuzzParseDataKeyFile(f *testing.F) {
	good := dataKeyFile{check: bytes.Repeat([]byte{1}, checkSize), keyName: "projects/p/locations/global/keyRings/r/cryptoKeys/k", ciphertext: []byte("ciphertext")}
	f.Add(good.encode())
	f.Add([]byte("CTGK\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseDataKeyFile(b)
		if err != nil {
			if !errors.Is(err, ErrBadDataKeyFile) {
				t.Fatalf("error %v is not ErrBadDataKeyFile", err)
			}
			return
		}
		if !bytes.Equal(got.encode(), b) {
			t.Fatalf("round trip changed the file")
		}
	})
}
