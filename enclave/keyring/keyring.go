package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/internal/wire"
)

// KeySize is the size of a data key: AES-256.
const KeySize = 32

// MaxVersions bounds how many key versions a keyring holds.
const MaxVersions = math.MaxUint16

// Errors of Encrypt and Decrypt.
var (
	// ErrMalformedCiphertext is returned by Decrypt and CiphertextVersion
	// when the ciphertext is not one that Encrypt produces: too short, bad
	// magic or unknown format.
	ErrMalformedCiphertext = errors.New("keyring: malformed ciphertext")

	// ErrUnknownVersion is returned by Decrypt when the ciphertext names a
	// key version this keyring does not hold (for example, one rotated in on
	// another node and not yet received here).
	ErrUnknownVersion = errors.New("keyring: ciphertext uses a key version this keyring does not hold")

	// ErrWrongRecord is returned by Decrypt when the ciphertext was made for
	// another record: a blob moved between records.
	ErrWrongRecord = errors.New("keyring: ciphertext belongs to another record")

	// ErrTampered is returned by Decrypt when the authentication tag does not
	// verify: the ciphertext was modified.
	ErrTampered = errors.New("keyring: ciphertext was tampered with")

	// ErrMalformedKeyring is returned by Open and Receiver.Unwrap when the
	// keyring encoding inside does not parse.
	ErrMalformedKeyring = errors.New("keyring: malformed keyring")

	// ErrTooManyVersions is returned by Rotate when the keyring already holds
	// MaxVersions versions, or its version counter is exhausted.
	ErrTooManyVersions = errors.New("keyring: no more key versions")
)

// Keyring is the cluster's set of versioned AES-256-GCM data keys. New
// writes use the current (highest) version; every version it holds
// decrypts.
//
// A Keyring is safe for concurrent use by many goroutines: Encrypt and
// Decrypt run in parallel, and Rotate briefly excludes them. It never logs,
// and no error it returns holds key or plaintext bytes.
type Keyring struct {
	mu      sync.RWMutex
	current uint32
	keys    map[uint32]*dataKey
}

type dataKey struct {
	raw  []byte
	aead cipher.AEAD
}

func newDataKey(raw []byte) (*dataKey, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return &dataKey{raw: raw, aead: aead}, nil
}

func freshKey() (*dataKey, error) {
	raw := make([]byte, KeySize)
	rand.Read(raw)
	return newDataKey(raw)
}

// Generate returns a new keyring holding one fresh random key, version 1.
// Only the first node of a cluster generates; others receive the keyring
// from a peer (see Receiver).
func Generate() (*Keyring, error) {
	dk, err := freshKey()
	if err != nil {
		return nil, err
	}
	return &Keyring{current: 1, keys: map[uint32]*dataKey{1: dk}}, nil
}

// Version returns the current key version, the one Encrypt uses.
func (k *Keyring) Version() uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}

// Versions returns the versions the keyring holds, in ascending order.
func (k *Keyring) Versions() []uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.versionsLocked()
}

func (k *Keyring) versionsLocked() []uint32 {
	vs := make([]uint32, 0, len(k.keys))
	for v := range k.keys {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// Rotate adds a fresh random key as the next version and makes it current,
// so later Encrypt calls use it; ciphertexts under older versions still
// decrypt. It returns the new version. The caller persists the keyring
// again (store.SaveKeyring) before relying on the new version.
func (k *Keyring) Rotate() (uint32, error) {
	dk, err := freshKey()
	if err != nil {
		return 0, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.current == math.MaxUint32 || len(k.keys) >= MaxVersions {
		return 0, ErrTooManyVersions
	}
	k.current++
	k.keys[k.current] = dk
	return k.current, nil
}

// A ciphertext is
//
//	magic "CK" | format 1 | key version (4) | record ID hash (16) | nonce (12) | AES-GCM ciphertext and tag
//
// The header is authenticated together with the record ID. The record ID's
// hash in the header lets Decrypt tell a blob moved from another record
// (ErrWrongRecord) from a modified one (ErrTampered).
const (
	ctMagic      = "CK"
	ctFormat     = 1
	ctHeaderSize = len(ctMagic) + 1 + 4 + enclave.IDSize
	nonceSize    = 12
	tagSize      = 16
	// Overhead is how many bytes Encrypt adds to a plaintext.
	Overhead = ctHeaderSize + nonceSize + tagSize
)

func recordHash(recordID string) enclave.ID {
	return enclave.HashID("coterie/keyring/v1/record", []byte(recordID))
}

// Encrypt encrypts plaintext under the current key version and binds the
// ciphertext to recordID (for example "presig/<key>/<id>"), so that it
// decrypts only as that record. Encrypting the same record twice gives
// different ciphertexts. Random nonces bound one key version to about 2^32
// encryptions; rotate well before that.
func (k *Keyring) Encrypt(recordID string, plaintext []byte) ([]byte, error) {
	k.mu.RLock()
	version, dk := k.current, k.keys[k.current]
	k.mu.RUnlock()

	rh := recordHash(recordID)
	out := make([]byte, 0, Overhead+len(plaintext))
	out = append(out, ctMagic...)
	out = append(out, ctFormat)
	out = wire.AppendU32(out, version)
	out = append(out, rh[:]...)
	header := out[:ctHeaderSize:ctHeaderSize]
	nonce := make([]byte, nonceSize)
	rand.Read(nonce)
	out = append(out, nonce...)
	return dk.aead.Seal(out, nonce, plaintext, recordData(header, recordID)), nil
}

// Decrypt decrypts a ciphertext that Encrypt made for recordID, under
// whichever key version it names. Errors: ErrMalformedCiphertext,
// ErrUnknownVersion, ErrWrongRecord, ErrTampered.
func (k *Keyring) Decrypt(recordID string, ciphertext []byte) ([]byte, error) {
	version, rh, err := parseHeader(ciphertext)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes is shorter than the %d-byte minimum", ErrMalformedCiphertext, len(ciphertext), Overhead)
	}
	k.mu.RLock()
	dk := k.keys[version]
	k.mu.RUnlock()
	if dk == nil {
		return nil, fmt.Errorf("%w: version %d", ErrUnknownVersion, version)
	}
	if rh != recordHash(recordID) {
		return nil, fmt.Errorf("%w: %q", ErrWrongRecord, recordID)
	}
	header := ciphertext[:ctHeaderSize:ctHeaderSize]
	body := ciphertext[ctHeaderSize:]
	plaintext, err := dk.aead.Open(nil, body[:nonceSize], body[nonceSize:], recordData(header, recordID))
	if err != nil {
		return nil, fmt.Errorf("%w: record %q", ErrTampered, recordID)
	}
	return plaintext, nil
}

// CiphertextVersion returns the key version a ciphertext was made under,
// without decrypting it: how a re-encryption pass after Rotate finds the
// records still under an old version.
func CiphertextVersion(ciphertext []byte) (uint32, error) {
	version, _, err := parseHeader(ciphertext)
	return version, err
}

func parseHeader(ciphertext []byte) (uint32, enclave.ID, error) {
	r := wire.NewReader(ciphertext)
	magic := r.Fixed(len(ctMagic))
	format := r.U8()
	version := r.U32()
	var rh enclave.ID
	copy(rh[:], r.Fixed(enclave.IDSize))
	switch {
	case r.Err() != nil:
		return 0, rh, fmt.Errorf("%w: %d bytes is shorter than the header", ErrMalformedCiphertext, len(ciphertext))
	case string(magic) != ctMagic:
		return 0, rh, fmt.Errorf("%w: bad magic", ErrMalformedCiphertext)
	case format != ctFormat:
		return 0, rh, fmt.Errorf("%w: unsupported format %d", ErrMalformedCiphertext, format)
	}
	return version, rh, nil
}

func recordData(header []byte, recordID string) []byte {
	return append(header[:len(header):len(header)], recordID...)
}
