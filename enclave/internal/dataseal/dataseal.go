package dataseal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/coterie-mpc/coterie/enclave"
)

// KeySize is the size of a sealing key and of Derive's output.
const KeySize = 32

const nonceSize = 12

// Sealer seals under one AES-256-GCM key for one SealScope.
type Sealer struct {
	policy enclave.KeyPolicy
	scope  enclave.SealScope
	aead   cipher.AEAD
}

// New returns a Sealer that seals under policy with key, a KeySize-byte
// key the caller may clear afterwards, framing blobs with scope's headers.
func New(scope enclave.SealScope, policy enclave.KeyPolicy, key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("dataseal: sealing key of %d bytes, want %d", len(key), KeySize)
	}
	if !policy.Valid() {
		return nil, fmt.Errorf("dataseal: invalid key policy %s", policy)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{policy: policy, scope: scope, aead: aead}, nil
}

// Kind returns the scope's enclave kind.
func (s *Sealer) Kind() enclave.Kind { return s.scope.Kind }

// KeyPolicy returns the policy Seal records.
func (s *Sealer) KeyPolicy() enclave.KeyPolicy { return s.policy }

// Seal implements enclave.Sealer: AES-256-GCM with a random nonce; the
// public header and ad are authenticated.
func (s *Sealer) Seal(plaintext, ad []byte) ([]byte, error) {
	out := s.scope.Header(s.policy, ad).Append(make([]byte, 0, enclave.SealedHeaderSize+nonceSize+len(plaintext)+s.aead.Overhead()))
	header := out[:enclave.SealedHeaderSize:enclave.SealedHeaderSize]
	nonce := make([]byte, nonceSize)
	rand.Read(nonce)
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, plaintext, aeadData(header, ad)), nil
}

// Unseal implements enclave.Sealer.
func (s *Sealer) Unseal(blob, ad []byte) ([]byte, error) {
	h, header, payload, err := enclave.ParseSealed(blob)
	if err != nil {
		return nil, err
	}
	if err := s.scope.Check(h, ad); err != nil {
		return nil, err
	}
	if len(payload) < nonceSize+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: payload of %d bytes is truncated", enclave.ErrMalformedBlob, len(payload))
	}
	plaintext, err := s.aead.Open(nil, payload[:nonceSize], payload[nonceSize:], aeadData(header, ad))
	if err != nil {
		return nil, enclave.ErrTampered
	}
	return plaintext, nil
}

// aeadData authenticates the public header together with the caller's
// associated data.
func aeadData(header, ad []byte) []byte {
	return append(header[:len(header):len(header)], ad...)
}

// Derive returns KeySize bytes of HKDF-SHA256 of secret for info.
func Derive(secret []byte, info string) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, info, KeySize)
	if err != nil {
		panic(err) // 32 bytes of SHA-256 HKDF output is always allowed
	}
	return k
}
