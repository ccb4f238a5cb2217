// Package cms opens the CiphertextForRecipient that AWS KMS returns to a
// Nitro enclave: the answer of Decrypt, GenerateDataKey or GenerateRandom
// called with a Recipient (an attestation document that carries the
// enclave's RSA public key). KMS does not return the plaintext then; it
// returns a CMS EnvelopedData (RFC 5652, section 6) in a ContentInfo, with
// one KeyTransRecipientInfo whose content-encryption key is wrapped with
// RSAES-OAEP (SHA-256, MGF1 with SHA-256, RFC 3560), and the content
// encrypted with AES-256-CBC and PKCS #7 padding (RFC 3565).
//
// # Why not a PKCS #7 library
//
// KMS encodes the message in BER with indefinite lengths and names the
// recipient by a subject key identifier, not by a certificate's issuer and
// serial number. encoding/asn1 reads DER only, and the Go PKCS #7
// libraries pick their recipient by issuer and serial. The enclave has no
// certificate and exactly one key, so Open reads the structure itself with
// a small BER reader (definite and indefinite lengths, low tag numbers,
// bounded depth and size) and takes the single recipient without matching
// its identifier: a key that is not the recipient's fails to unwrap.
//
// # What Open refuses
//
//   - anything but exactly that shape: one ContentInfo of type
//     envelopedData, version 0 or 2, no originator info, exactly one
//     KeyTransRecipientInfo, content type data, no unprotected attributes,
//     and no bytes after the message (ErrMalformed);
//   - other algorithms: OAEP with another hash, another mask function or a
//     label, or another content cipher (ErrUnsupported);
//   - a wrapped key that does not unwrap to a 32-byte AES key, or content
//     whose padding is wrong (ErrDecrypt).
//
// # Padding oracles
//
// CBC without a MAC leaks its plaintext to anyone who may submit altered
// ciphertexts and learn whether the padding was right. The caller must
// therefore use each RSA key for one KMS answer only and discard it, as
// package kmsseal does: an altered envelope can then be tried once, against
// a key that is already gone. Errors never say which check failed beyond
// ErrDecrypt, and hold no key material.
package cms
