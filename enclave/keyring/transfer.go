package keyring

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/sha512"
	"errors"
	"fmt"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/internal/wire"
)

// Errors of the keyring transfer.
var (
	// ErrMalformedRequest is returned by Wrap when the transfer request does
	// not parse.
	ErrMalformedRequest = errors.New("keyring: malformed transfer request")

	// ErrKeyNotBound is returned by Wrap when the request's evidence, though
	// genuine and allowed, does not cover the request's public key and the
	// binding: someone attached an enclave's evidence to their own key, or
	// replayed another node's request.
	ErrKeyNotBound = errors.New("keyring: attestation evidence does not cover the transfer key")

	// ErrMalformedWrapped is returned by Receiver.Unwrap when the wrapped
	// keyring does not parse.
	ErrMalformedWrapped = errors.New("keyring: malformed wrapped keyring")

	// ErrUnwrap is returned by Receiver.Unwrap when the wrapped keyring does
	// not decrypt with the receiver's key: it was tampered with, or wrapped
	// for another receiver.
	ErrUnwrap = errors.New("keyring: wrapped keyring does not open with this receiver's key")
)

// The transfer uses HPKE (RFC 9180) with DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256 and AES-256-GCM. The request is
//
//	magic "CTKQ" | format 1 | KEM ID (2) | public key (2-byte length) | evidence (4-byte length)
//
// and the evidence's report data is TransferReportData(public key). The
// wrapped keyring is
//
//	magic "CTKW" | format 1 | encapsulated key (2-byte length) | HPKE ciphertext
//
// whose plaintext is the keyring encoding. The HPKE info is bound to the
// receiver's public key and the header is the AEAD's associated data.
const (
	reqMagic      = "CTKQ"
	wrapMagic     = "CTKW"
	transferFmt   = 1
	maxKEMKeySize = 256
	transferInfo  = "coterie/keyring/v1/transfer"
)

var (
	transferKEM  = hpke.DHKEM(ecdh.X25519())
	transferKDF  = hpke.HKDFSHA256()
	transferAEAD = hpke.AES256GCM()
)

// TransferReportData returns the report data a joiner's evidence must carry
// for transfer public key pub and binding bind (the joiner's identity key,
// which the member knows from the authenticated connection): SHA-512 over a
// domain label, the key and the binding, each length-prefixed.
func TransferReportData(pub, bind []byte) []byte {
	h := sha512.New()
	h.Write([]byte(transferInfo + "/report-data\x00"))
	h.Write(wire.AppendBytes16(nil, pub))
	h.Write(wire.AppendBytes16(nil, bind))
	return h.Sum(nil)
}

func transferInfoFor(pub []byte) []byte {
	return append([]byte(transferInfo+"/info\x00"), pub...)
}

// Receiver is the joining node's half of a keyring transfer. It holds a
// fresh HPKE key pair whose private key never leaves memory, and a request
// carrying the public key and evidence that this enclave made it.
//
// A Receiver is safe for concurrent use. Use one Receiver per join attempt.
type Receiver struct {
	priv    hpke.PrivateKey
	pub     []byte
	request []byte
}

// NewReceiver makes a fresh key pair and asks a for evidence over it and
// bind (at most 65535 bytes): the joiner binds its identity key, so that
// the evidence cannot be replayed by another node.
func NewReceiver(ctx context.Context, a enclave.Attester, bind []byte) (*Receiver, error) {
	priv, err := transferKEM.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("keyring: transfer key: %w", err)
	}
	pub := priv.PublicKey().Bytes()
	evidence, err := a.Evidence(ctx, TransferReportData(pub, bind))
	if err != nil {
		return nil, fmt.Errorf("keyring: transfer evidence: %w", err)
	}
	req := transferRequest{kem: transferKEM.ID(), pub: pub, evidence: evidence}
	return &Receiver{priv: priv, pub: pub, request: req.append(nil)}, nil
}

// Request returns the transfer request to send to a node holding the
// keyring. It holds no secret. The caller must not modify it.
func (r *Receiver) Request() []byte { return r.request }

// transferRequest is a parsed request.
type transferRequest struct {
	kem      uint16
	pub      []byte
	evidence []byte
}

func parseRequest(b []byte) (transferRequest, error) {
	rd := wire.NewReader(b)
	magic := rd.Fixed(len(reqMagic))
	format := rd.U8()
	req := transferRequest{kem: rd.U16(), pub: rd.Bytes16(maxKEMKeySize), evidence: rd.Bytes32(enclave.MaxEvidenceSize)}
	switch err := rd.Done(); {
	case err != nil:
		return transferRequest{}, fmt.Errorf("%w: %w", ErrMalformedRequest, err)
	case string(magic) != reqMagic:
		return transferRequest{}, fmt.Errorf("%w: bad magic", ErrMalformedRequest)
	case format != transferFmt:
		return transferRequest{}, fmt.Errorf("%w: unsupported format %d", ErrMalformedRequest, format)
	}
	return req, nil
}

func (t transferRequest) append(b []byte) []byte {
	b = append(b, reqMagic...)
	b = append(b, transferFmt)
	b = wire.AppendU16(b, t.kem)
	b = wire.AppendBytes16(b, t.pub)
	return wire.AppendBytes32(b, t.evidence)
}

// Wrap encrypts the keyring to the joiner that made request, after checking
// with v that the request's evidence is genuine, that p allows the
// identity it proves, and that it covers the request's public key and bind
// (what the joiner bound: its identity key, as the member authenticated it). It
// returns the wrapped keyring, to send back to the joiner, and the joiner's
// verified identity, for the caller's audit log.
//
// Errors: ErrMalformedRequest, ErrKeyNotBound, and the Verifier's
// (enclave.ErrNotAllowed, enclave.ErrEvidenceUnverified, ...). On error
// nothing secret has left the keyring.
func (k *Keyring) Wrap(ctx context.Context, v enclave.Verifier, p enclave.Policy, request, bind []byte) ([]byte, enclave.Identity, error) {
	req, err := parseRequest(request)
	if err != nil {
		return nil, enclave.Identity{}, err
	}
	if req.kem != transferKEM.ID() {
		return nil, enclave.Identity{}, fmt.Errorf("%w: unsupported KEM 0x%04x", ErrMalformedRequest, req.kem)
	}
	pub, err := transferKEM.NewPublicKey(req.pub)
	if err != nil {
		return nil, enclave.Identity{}, fmt.Errorf("%w: bad public key", ErrMalformedRequest)
	}
	id, err := v.Verify(ctx, req.evidence, p)
	if err != nil {
		return nil, enclave.Identity{}, fmt.Errorf("keyring: transfer request: %w", err)
	}
	if !bytes.Equal(id.ReportData, TransferReportData(req.pub, bind)) {
		return nil, id, ErrKeyNotBound
	}

	enc, sender, err := hpke.NewSender(pub, transferKDF, transferAEAD, transferInfoFor(req.pub))
	if err != nil {
		return nil, id, fmt.Errorf("keyring: hpke: %w", err)
	}
	plain := k.marshal()
	defer clear(plain)
	ct, err := sender.Seal(wrapHeader(), plain)
	if err != nil {
		return nil, id, fmt.Errorf("keyring: hpke: %w", err)
	}
	return wrapped{enc: enc, ct: ct}.append(nil), id, nil
}

// wrapped is a parsed wrapped keyring.
type wrapped struct {
	enc, ct []byte
}

func parseWrapped(b []byte) (wrapped, error) {
	r := wire.NewReader(b)
	magic := r.Fixed(len(wrapMagic))
	format := r.U8()
	w := wrapped{enc: r.Bytes16(maxKEMKeySize)}
	w.ct = r.Rest()
	switch {
	case r.Err() != nil:
		return wrapped{}, fmt.Errorf("%w: %w", ErrMalformedWrapped, r.Err())
	case string(magic) != wrapMagic:
		return wrapped{}, fmt.Errorf("%w: bad magic", ErrMalformedWrapped)
	case format != transferFmt:
		return wrapped{}, fmt.Errorf("%w: unsupported format %d", ErrMalformedWrapped, format)
	}
	return w, nil
}

// wrapHeader is the fixed start of a wrapped keyring, authenticated as the
// HPKE associated data.
func wrapHeader() []byte { return append([]byte(wrapMagic), transferFmt) }

func (w wrapped) append(b []byte) []byte {
	b = append(b, wrapHeader()...)
	b = wire.AppendBytes16(b, w.enc)
	return append(b, w.ct...)
}

// Unwrap decrypts a keyring that Wrap encrypted to this receiver. The
// caller then seals it with its own enclave (store.SaveKeyring). Errors:
// ErrMalformedWrapped, ErrUnwrap, ErrMalformedKeyring.
func (r *Receiver) Unwrap(wrappedKeyring []byte) (*Keyring, error) {
	w, err := parseWrapped(wrappedKeyring)
	if err != nil {
		return nil, err
	}
	recipient, err := hpke.NewRecipient(w.enc, r.priv, transferKDF, transferAEAD, transferInfoFor(r.pub))
	if err != nil {
		return nil, fmt.Errorf("%w: bad encapsulated key", ErrUnwrap)
	}
	plain, err := recipient.Open(wrapHeader(), w.ct)
	if err != nil {
		return nil, ErrUnwrap
	}
	defer clear(plain)
	return unmarshal(plain)
}
