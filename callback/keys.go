package callback

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// RSA key sizes this package accepts. Smaller keys are weak; larger ones
// only cost time.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// KeyType is a kind of key GenerateKey can make.
type KeyType uint8

// The key types. Handler keys may be either; the node's callback key,
// which signs requests with RS256, is always KeyTypeRSA.
const (
	// KeyTypeEC is ECDSA on P-256, signing ES256.
	KeyTypeEC KeyType = iota + 1
	// KeyTypeRSA is 2048-bit RSA, signing RS256.
	KeyTypeRSA
)

// String returns "ec" or "rsa".
func (t KeyType) String() string {
	switch t {
	case KeyTypeEC:
		return "ec"
	case KeyTypeRSA:
		return "rsa"
	default:
		return fmt.Sprintf("KeyType(%d)", uint8(t))
	}
}

// ParseKeyType parses "ec" or "rsa"; it wraps ErrKey.
func ParseKeyType(s string) (KeyType, error) {
	switch s {
	case "ec":
		return KeyTypeEC, nil
	case "rsa":
		return KeyTypeRSA, nil
	default:
		return 0, fmt.Errorf("%w: unknown key type %q (want ec or rsa)", ErrKey, truncate(s, 16))
	}
}

// GenerateKey makes a new key of type t from crypto/rand.
func GenerateKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case KeyTypeEC:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyTypeRSA:
		return rsa.GenerateKey(rand.Reader, minRSABits)
	default:
		return nil, fmt.Errorf("%w: unknown key type %s", ErrKey, t)
	}
}

// keyAlg returns the JWT algorithm that goes with pub: RS256 for RSA,
// ES256 for ECDSA P-256. Any other key wraps ErrKey.
func keyAlg(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return "", fmt.Errorf("%w: empty RSA key", ErrKey)
		}
		if bits := k.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return "", fmt.Errorf("%w: RSA key of %d bits (want %d to %d)", ErrKey, bits, minRSABits, maxRSABits)
		}
		return algRS256, nil
	case *ecdsa.PublicKey:
		if k == nil || k.Curve != elliptic.P256() {
			return "", fmt.Errorf("%w: ECDSA key not on P-256", ErrKey)
		}
		return algES256, nil
	default:
		return "", fmt.Errorf("%w: %T keys are not supported (want RSA or ECDSA P-256)", ErrKey, pub)
	}
}

// MarshalPublicKeyPEM encodes an RSA or ECDSA P-256 public key as a PEM
// "PUBLIC KEY" block (PKIX). This is what `coterie node print-public-key`
// and `coterie callback keygen` print.
func MarshalPublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	if _, err := keyAlg(pub); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot encode public key", ErrKey)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePublicKeyPEM decodes the first PEM block of data: a "PUBLIC KEY"
// (PKIX) or "RSA PUBLIC KEY" (PKCS #1) block holding an RSA key of 2048 to
// 8192 bits or an ECDSA P-256 key. Failures wrap ErrKey and never quote
// the input.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrKey)
	}
	var (
		pub any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: PEM block %q is not a public key", ErrKey, truncate(block.Type, 32))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: cannot decode %s block", ErrKey, block.Type)
	}
	if _, err := keyAlg(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// MarshalPrivateKeyPEM encodes an RSA or ECDSA P-256 private key as a PEM
// "PRIVATE KEY" block (PKCS #8). The result is secret: write it only to a
// file of mode 0600 or seal it.
func MarshalPrivateKeyPEM(key crypto.Signer) ([]byte, error) {
	if key == nil {
		return nil, fmt.Errorf("%w: nil key", ErrKey)
	}
	if _, err := keyAlg(key.Public()); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot encode private key", ErrKey)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKeyPEM decodes the first PEM block of data: "PRIVATE KEY"
// (PKCS #8), "RSA PRIVATE KEY" (PKCS #1) or "EC PRIVATE KEY" (SEC 1),
// holding an RSA key of 2048 to 8192 bits or an ECDSA P-256 key. Failures
// wrap ErrKey and never quote the input.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrKey)
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: PEM block %q is not a private key", ErrKey, truncate(block.Type, 32))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: cannot decode %s block", ErrKey, block.Type)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T keys are not supported", ErrKey, key)
	}
	if _, err := keyAlg(signer.Public()); err != nil {
		return nil, err
	}
	return signer, nil
}
