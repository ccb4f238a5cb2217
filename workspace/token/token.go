package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coterie-mpc/coterie/protocol"
	"google.golang.org/protobuf/proto"
)

// Prefix starts every version-1 pairing token.
const Prefix = "coterie-pair-v1."

// MaxLen bounds an encoded token; longer input is refused before decoding.
const MaxLen = 2048

// SecretLen is the length of a token's one-time secret.
const SecretLen = 32

const macLen = 32

var (
	// ErrMalformed is returned by Parse when the string is not a well-formed
	// version-1 token (a paste error, a truncation, or a foreign string).
	ErrMalformed = errors.New("token: malformed pairing token")
	// ErrBadMAC is returned by Verify when the token was altered or was not
	// issued by this workspace.
	ErrBadMAC = errors.New("token: pairing token was altered or issued elsewhere")
	// ErrExpired is returned by CheckExpiry when the token's expiry has passed.
	ErrExpired = errors.New("token: pairing token has expired")
)

var b64 = base64.RawURLEncoding.Strict()

// Token is a parsed pairing token. Its fields must not be modified.
type Token struct {
	// Fields is the token's content.
	Fields *protocol.WsPairingToken
	// payload and mac are the bytes as received, so that Verify checks
	// exactly what was issued.
	payload []byte
	mac     []byte
}

// Encode validates f and returns its token string, MAC'd under key.
func Encode(f *protocol.WsPairingToken, key []byte) (string, error) {
	if err := validate(f); err != nil {
		return "", err
	}
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("token: marshal: %w", err)
	}
	s := Prefix + b64.EncodeToString(payload) + "." + b64.EncodeToString(mac(key, payload))
	if len(s) > MaxLen {
		return "", fmt.Errorf("%w: token would be %d bytes", ErrMalformed, len(s))
	}
	return s, nil
}

// Parse decodes a token string without checking its MAC or expiry.
// Surrounding white space is ignored. Errors wrap ErrMalformed and never
// quote the secret.
func Parse(s string) (*Token, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxLen)
	}
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return nil, fmt.Errorf("%w: does not start with %q", ErrMalformed, Prefix)
	}
	p64, m64, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, fmt.Errorf("%w: missing MAC", ErrMalformed)
	}
	payload, err := b64.DecodeString(p64)
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	m, err := b64.DecodeString(m64)
	if err != nil || len(m) != macLen {
		return nil, fmt.Errorf("%w: bad MAC encoding", ErrMalformed)
	}
	f := &protocol.WsPairingToken{}
	if err := proto.Unmarshal(payload, f); err != nil {
		return nil, fmt.Errorf("%w: payload does not decode", ErrMalformed)
	}
	if err := validate(f); err != nil {
		return nil, err
	}
	return &Token{Fields: f, payload: payload, mac: m}, nil
}

// String returns the token in its wire form, exactly as parsed.
func (t *Token) String() string {
	return Prefix + b64.EncodeToString(t.payload) + "." + b64.EncodeToString(t.mac)
}

// Verify checks the token's MAC under key, in constant time.
func (t *Token) Verify(key []byte) error {
	if !hmac.Equal(t.mac, mac(key, t.payload)) {
		return ErrBadMAC
	}
	return nil
}

// CheckExpiry returns ErrExpired when now is at or past the token's expiry.
func (t *Token) CheckExpiry(now time.Time) error {
	if now.UnixNano() >= t.Fields.GetExpiresAt() {
		return fmt.Errorf("%w at %s", ErrExpired, time.Unix(0, t.Fields.GetExpiresAt()).UTC().Format(time.RFC3339))
	}
	return nil
}

// ID returns the token's identifier: the SHA-256 of its secret. The
// workspace stores this, not the secret.
func (t *Token) ID() [32]byte { return ID(t.Fields.GetSecret()) }

// ID returns the identifier of a token with the given secret.
func ID(secret []byte) [32]byte {
	return sha256.Sum256(append([]byte("coterie/pairing-token/"), secret...))
}

// Pin returns the CA pin the token carries.
func (t *Token) Pin() [32]byte {
	var p [32]byte
	copy(p[:], t.Fields.GetCaPin())
	return p
}

func mac(key, payload []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(Prefix))
	h.Write(payload)
	return h.Sum(nil)
}

func validate(f *protocol.WsPairingToken) error {
	var problems []string
	if f == nil {
		return fmt.Errorf("%w: empty", ErrMalformed)
	}
	if a := f.GetAddress(); a == "" || len(a) > 255 || strings.ContainsAny(a, " \t\r\n") {
		problems = append(problems, "bad address")
	}
	if len(f.GetCaPin()) != sha256.Size {
		problems = append(problems, "bad CA pin")
	}
	if !validID(f.GetWorkspaceId()) {
		problems = append(problems, "bad workspace ID")
	}
	if !validID(f.GetUserId()) {
		problems = append(problems, "bad user ID")
	}
	switch f.GetRole() {
	case protocol.WsRole_WS_ROLE_SIGNER, protocol.WsRole_WS_ROLE_APPROVER, protocol.WsRole_WS_ROLE_BOTH:
	default:
		problems = append(problems, "bad role")
	}
	if len(f.GetSecret()) != SecretLen {
		problems = append(problems, "bad secret length")
	}
	if f.GetExpiresAt() <= 0 {
		problems = append(problems, "no expiry")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrMalformed, strings.Join(problems, ", "))
	}
	return nil
}

// validID accepts the workspace's identifiers: 1 to 64 characters of
// [A-Za-z0-9._-].
func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}
