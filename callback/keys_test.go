package callback

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
)

func TestKeyPEMRoundTrip(t *testing.T) {
	k := testKeys()
	for _, key := range []crypto.Signer{k.handlerRSA, k.handlerEC} {
		pub := key.Public()
		pubPEM, err := MarshalPublicKeyPEM(pub)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParsePublicKeyPEM(pubPEM)
		if err != nil {
			t.Fatal(err)
		}
		if !got.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
			t.Fatalf("%T: public key changed in round trip", pub)
		}
	}
	for _, key := range []crypto.Signer{k.handlerRSA, k.handlerEC} {
		privPEM, err := MarshalPrivateKeyPEM(key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParsePrivateKeyPEM(privPEM)
		if err != nil {
			t.Fatal(err)
		}
		if !key.(interface{ Equal(crypto.PrivateKey) bool }).Equal(got) {
			t.Fatalf("%T: private key changed in round trip", key)
		}
	}
}

func TestParseLegacyPEM(t *testing.T) {
	k := testKeys()
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.handlerRSA)})
	if got, err := ParsePrivateKeyPEM(pkcs1); err != nil || !k.handlerRSA.Equal(got) {
		t.Fatalf("PKCS #1 private: %v", err)
	}
	sec1DER, err := x509.MarshalECPrivateKey(k.handlerEC)
	if err != nil {
		t.Fatal(err)
	}
	sec1 := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1DER})
	if got, err := ParsePrivateKeyPEM(sec1); err != nil || !k.handlerEC.Equal(got) {
		t.Fatalf("SEC 1 private: %v", err)
	}
	pkcs1Pub := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.handlerRSA.PublicKey)})
	if got, err := ParsePublicKeyPEM(pkcs1Pub); err != nil || !k.handlerRSA.PublicKey.Equal(got) {
		t.Fatalf("PKCS #1 public: %v", err)
	}
}

func TestKeyErrors(t *testing.T) {
	k := testKeys()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der := func(v any) []byte {
		b, err := x509.MarshalPKIXPublicKey(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p8 := func(v any) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	privPEM, _ := MarshalPrivateKeyPEM(k.handlerEC)
	pubTests := map[string][]byte{
		"empty":          nil,
		"no PEM":         []byte("hello"),
		"private as pub": privPEM,
		"garbage DER":    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("garbage")}),
		"P-384":          pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der(&p384.PublicKey)}),
		"Ed25519":        pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der(edPriv.Public())}),
	}
	for name, data := range pubTests {
		if _, err := ParsePublicKeyPEM(data); !errors.Is(err, ErrKey) {
			t.Errorf("public %s: err = %v", name, err)
		}
	}
	garbage := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("secret-looking-bytes")})
	privTests := map[string][]byte{
		"empty":       nil,
		"public":      pubTests["P-384"],
		"garbage DER": garbage,
		"P-384":       pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8(p384)}),
		"Ed25519":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8(edPriv)}),
	}
	for name, data := range privTests {
		_, err := ParsePrivateKeyPEM(data)
		if !errors.Is(err, ErrKey) {
			t.Errorf("private %s: err = %v", name, err)
			continue
		}
		if bytes.Contains([]byte(err.Error()), []byte("secret-looking")) || (len(data) > 0 && bytes.Contains([]byte(err.Error()), data[:20])) {
			t.Errorf("private %s: error quotes the input: %v", name, err)
		}
	}
	if _, err := MarshalPublicKeyPEM(&p384.PublicKey); !errors.Is(err, ErrKey) {
		t.Errorf("marshal P-384: %v", err)
	}
	if _, err := MarshalPrivateKeyPEM(nil); !errors.Is(err, ErrKey) {
		t.Errorf("marshal nil: %v", err)
	}
}

func TestGenerateKey(t *testing.T) {
	for _, name := range []string{"ec", "rsa"} {
		typ, err := ParseKeyType(name)
		if err != nil || typ.String() != name {
			t.Fatalf("ParseKeyType(%q) = %v, %v", name, typ, err)
		}
		key, err := GenerateKey(typ)
		if err != nil {
			t.Fatal(err)
		}
		alg, err := keyAlg(key.Public())
		if err != nil || (alg == algES256) != (typ == KeyTypeEC) {
			t.Fatalf("%s key signs %s, %v", typ, alg, err)
		}
	}
	if _, err := ParseKeyType("dsa"); !errors.Is(err, ErrKey) {
		t.Fatalf("dsa: %v", err)
	}
	if _, err := GenerateKey(0); !errors.Is(err, ErrKey) {
		t.Fatalf("zero type: %v", err)
	}
}
