// Package enclavetest is for tests only. It gives them simulated machines
// (two Machines are two machines), a Sealer that records what it protects,
// and a scan of a directory for those secrets, to check invariant I4: no
// secret reaches disk in plaintext.
package enclavetest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/coterie-mpc/coterie/enclave"
)

// RecordingSealer wraps a Sealer and records every plaintext that goes into
// Seal or comes out of Unseal: exactly the secrets an enclave protects.
// Test-only: it keeps secrets in memory.
type RecordingSealer struct {
	enclave.Sealer

	mu      sync.Mutex
	secrets [][]byte
}

var _ enclave.Sealer = (*RecordingSealer)(nil)

// NewRecordingSealer wraps s.
func NewRecordingSealer(s enclave.Sealer) *RecordingSealer { return &RecordingSealer{Sealer: s} }

// Seal records plaintext and seals it with the wrapped Sealer.
func (r *RecordingSealer) Seal(plaintext, ad []byte) ([]byte, error) {
	r.record(plaintext)
	return r.Sealer.Seal(plaintext, ad)
}

// Unseal unseals with the wrapped Sealer and records the plaintext.
func (r *RecordingSealer) Unseal(blob, ad []byte) ([]byte, error) {
	p, err := r.Sealer.Unseal(blob, ad)
	if err == nil {
		r.record(p)
	}
	return p, err
}

func (r *RecordingSealer) record(p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = append(r.secrets, bytes.Clone(p))
}

// Secrets returns copies of the recorded plaintexts.
func (r *RecordingSealer) Secrets() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]byte, len(r.secrets))
	for i, s := range r.secrets {
		out[i] = bytes.Clone(s)
	}
	return out
}

// Window is the length of the byte runs ScanDir looks for. A secret is
// found if any run of Window consecutive bytes of it appears in a file, so
// a secret stored in pieces or next to framing is still found. Sixteen
// random bytes never appear by chance.
const Window = 16

// ScanDir reads every file under dir and returns one line per place where a
// secret, or any Window-byte run of it, or its hex or base64 encoding,
// appears. An empty result means no secret is on disk in the clear. The
// findings name the file and the secret's index, never its bytes.
func ScanDir(dir string, secrets [][]byte) ([]string, error) {
	var findings []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, s := range secrets {
			if where := find(data, s); where != "" {
				findings = append(findings, fmt.Sprintf("%s: secret %d (%d bytes) found %s", path, i, len(s), where))
			}
		}
		return nil
	})
	return findings, err
}

func find(data, secret []byte) string {
	if len(secret) == 0 {
		return ""
	}
	w := min(Window, len(secret))
	for off := 0; off+w <= len(secret); off++ {
		if bytes.Contains(data, secret[off:off+w]) {
			return fmt.Sprintf("as raw bytes (run at offset %d)", off)
		}
	}
	encodings := map[string]string{
		"hex":          hex.EncodeToString(secret),
		"upper hex":    fmt.Sprintf("%X", secret),
		"base64":       base64.StdEncoding.EncodeToString(secret),
		"base64 (url)": base64.RawURLEncoding.EncodeToString(secret),
		"base64 (raw)": base64.RawStdEncoding.EncodeToString(secret),
	}
	for name, enc := range encodings {
		if bytes.Contains(data, []byte(enc)) {
			return "as " + name
		}
	}
	return ""
}
