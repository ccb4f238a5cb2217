package nitrotest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"testing"
)

// Envelope returns plaintext as AWS KMS returns it in CiphertextForRecipient
// to the holder of pub: a BER ContentInfo with indefinite lengths around an
// EnvelopedData (version 2) with one KeyTransRecipientInfo (version 2, a
// subject key identifier, RSAES-OAEP with SHA-256 and MGF1-SHA-256), and
// the content encrypted with AES-256-CBC under a fresh key, in a
// constructed OCTET STRING. It is written from RFC 5652, 3560 and 3565
// and the shape of envelopes KMS has sent.
func Envelope(t testing.TB, pub *rsa.PublicKey, plaintext []byte) []byte {
	t.Helper()
	padLen := aes.BlockSize - len(plaintext)%aes.BlockSize
	content := append([]byte(nil), plaintext...)
	for range padLen {
		content = append(content, byte(padLen))
	}
	return EnvelopeUnpadded(t, pub, content)
}

// EnvelopeUnpadded is Envelope for content that is already whole AES
// blocks and is encrypted as it is, for envelopes whose padding must be
// wrong.
func EnvelopeUnpadded(t testing.TB, pub *rsa.PublicKey, content []byte) []byte {
	t.Helper()
	cek, iv := make([]byte, 32), make([]byte, aes.BlockSize)
	rand.Read(cek)
	rand.Read(iv)
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, cek, nil)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		t.Fatal(err)
	}
	content = append([]byte(nil), content...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(content, content)

	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	ski := sha256.Sum256(spki)
	sha256Alg := tlv(0x30, oid(t, 2, 16, 840, 1, 101, 3, 4, 2, 1), tlv(0x05))
	oaep := tlv(0x30,
		oid(t, 1, 2, 840, 113549, 1, 1, 7),
		tlv(0x30, tlv(0xa0, sha256Alg), tlv(0xa1, tlv(0x30, oid(t, 1, 2, 840, 113549, 1, 1, 8), sha256Alg))))
	recipient := tlv(0x30, tlv(0x02, []byte{2}), tlv(0x80, ski[:]), oaep, tlv(0x04, wrapped))
	encrypted := indefinite(0x30,
		oid(t, 1, 2, 840, 113549, 1, 7, 1),
		tlv(0x30, oid(t, 2, 16, 840, 1, 101, 3, 4, 1, 42), tlv(0x04, iv)),
		indefinite(0xa0, tlv(0x04, content)))
	enveloped := indefinite(0x30, tlv(0x02, []byte{2}), tlv(0x31, recipient), encrypted)
	return indefinite(0x30, oid(t, 1, 2, 840, 113549, 1, 7, 3), indefinite(0xa0, enveloped))
}

// tlv encodes an element of identifier id with a definite length.
func tlv(id byte, contents ...[]byte) []byte {
	var c []byte
	for _, p := range contents {
		c = append(c, p...)
	}
	out := []byte{id}
	switch n := len(c); {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 0x100:
		out = append(out, 0x81, byte(n))
	default:
		out = append(out, 0x82, byte(n>>8), byte(n))
	}
	return append(out, c...)
}

// indefinite encodes a constructed element of identifier id with an
// indefinite length, closed by end-of-contents.
func indefinite(id byte, children ...[]byte) []byte {
	out := []byte{id, 0x80}
	for _, c := range children {
		out = append(out, c...)
	}
	return append(out, 0, 0)
}

func oid(t testing.TB, arcs ...int) []byte {
	der, err := asn1.Marshal(asn1.ObjectIdentifier(arcs))
	if err != nil {
		t.Fatal(err)
	}
	return der
}
