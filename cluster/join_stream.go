package cluster

import (
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The join stream carries one request frame (opaque to this package) and
// one answer frame: a status byte, then the JoinServer's answer or, on
// refusal, its error text.
const (
	joinOK      byte = 0
	joinRefused byte = 1
	// maxJoinErrorBytes bounds the error text of a refusal.
	maxJoinErrorBytes = 1024
)

// errMalformedJoinAnswer is returned by DialJoin when the answer frame is
// neither an answer nor a refusal.
var errMalformedJoinAnswer = errors.New("cluster: malformed join answer")

// DialJoin runs one join exchange with the member at addr over TLS 1.3,
// dialled over nw (nil means plain TCP), presenting identity's certificate
// and accepting the server only if the SHA-256 of its identity public key
// equals pin (from the join token).
//
// req and the answer are each at most maxBytes. ctx bounds the whole
// exchange, including the member's work on the request; give it a deadline.
// A server whose key does not match pin is refused during the handshake
// (ErrForbidden) before req is sent. A refusal by the member's JoinServer
// is ErrJoinRefused, with the member's text; ErrTooLarge when req is over
// maxBytes.
func DialJoin(ctx context.Context, nw Network, addr string, identity ed25519.PrivateKey, pin [32]byte, req []byte, maxBytes int) (resp []byte, err error) {
	if len(identity) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("cluster: join: identity is %d bytes, not an Ed25519 private key", len(identity))
	}
	if maxBytes < 1 {
		return nil, fmt.Errorf("cluster: join: maxBytes is %d, want at least 1", maxBytes)
	}
	if len(req) > maxBytes {
		return nil, errorf(ErrTooLarge, "join request of %d bytes, limit %d", len(req), maxBytes)
	}
	cert, err := newCertificate(identity)
	if err != nil {
		return nil, err
	}
	check := func(pub ed25519.PublicKey) error {
		got := IdentityPin(pub)
		if subtle.ConstantTimeCompare(got[:], pin[:]) != 1 {
			return errorf(ErrForbidden, "%s has identity key %s, which does not match the join token's pin", addr, fingerprint(pub))
		}
		return nil
	}
	conn, err := dialStream(ctx, orTCP(nw), addr, clientTLS(cert, check), streamJoin, 0)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if err := writeFrame(conn, req); err != nil {
		return nil, fmt.Errorf("cluster: join: send the request to %s: %w", addr, err)
	}
	b, err := readFrame(conn, maxBytes+1, 0)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("cluster: join: read the answer of %s: %w", addr, err)
	}
	return decodeJoinAnswer(b)
}

// serveJoin answers the one join request of a stream.
func (t *tlsTransport) serveJoin(sc *serverConn) {
	defer sc.Close()
	remote := sc.RemoteAddr().String()
	_ = sc.SetReadDeadline(time.Now().Add(t.timeout))
	req, err := readFrame(sc, t.maxCommand, t.timeout)
	var answer []byte
	switch {
	case errors.Is(err, ErrTooLarge):
		// The joiner waits for an answer: tell it why.
		t.log.Warn("cluster join request refused", "remote", remote, "key", fingerprint(sc.key), "err", err)
	case err != nil:
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			t.log.Debug("cluster join stream closed", "remote", remote, "err", err)
		}
		return
	default:
		ctx, cancel := context.WithTimeout(t.ctx, t.joinTimeout)
		answer, err = t.join.ServeJoin(ctx, sc.key, req)
		cancel()
		if err == nil && len(answer) > t.maxCommand {
			err = errorf(ErrTooLarge, "join answer of %d bytes, limit %d", len(answer), t.maxCommand)
		}
		if err != nil {
			t.log.Info("cluster join refused", "remote", remote, "key", fingerprint(sc.key), "err", err)
		} else {
			t.log.Info("cluster join answered", "remote", remote, "key", fingerprint(sc.key))
		}
	}
	_ = sc.SetWriteDeadline(time.Now().Add(t.timeout))
	if werr := writeFrame(sc, encodeJoinAnswer(answer, err)); werr != nil {
		t.log.Debug("cluster join answer not sent", "remote", remote, "err", werr)
	}
}

// encodeJoinAnswer is the answer frame's body: the answer when err is nil,
// else err's text, cleaned and cut to maxJoinErrorBytes.
func encodeJoinAnswer(answer []byte, err error) []byte {
	if err != nil {
		return append([]byte{joinRefused}, joinErrorText(err.Error())...)
	}
	return append([]byte{joinOK}, answer...)
}

// decodeJoinAnswer reads an answer frame's body: the answer, or the
// member's refusal as ErrJoinRefused.
func decodeJoinAnswer(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, errMalformedJoinAnswer
	}
	switch b[0] {
	case joinOK:
		return b[1:], nil
	case joinRefused:
		if len(b)-1 > maxJoinErrorBytes {
			return nil, fmt.Errorf("%w: refusal text of %d bytes", errMalformedJoinAnswer, len(b)-1)
		}
		return nil, errorf(ErrJoinRefused, "%s", joinErrorText(string(b[1:])))
	}
	return nil, fmt.Errorf("%w: status %d", errMalformedJoinAnswer, b[0])
}

// joinErrorText makes a refusal's text safe to show: valid UTF-8 without
// control characters, at most maxJoinErrorBytes. Both ends apply it, the
// joiner because the text comes from the network.
func joinErrorText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) <= maxJoinErrorBytes {
		return s
	}
	cut := maxJoinErrorBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
