package token

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/protocol"
	"google.golang.org/protobuf/proto"
)

var (
	key   = bytes.Repeat([]byte{7}, 32)
	epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func fields() *protocol.WsPairingToken {
	return &protocol.WsPairingToken{
		Address:     "127.0.0.1:7443",
		CaPin:       bytes.Repeat([]byte{1}, 32),
		WorkspaceId: "default",
		UserId:      "u-0001",
		Role:        protocol.WsRole_WS_ROLE_SIGNER,
		Secret:      bytes.Repeat([]byte{9}, 32),
		ExpiresAt:   epoch.Add(time.Hour).UnixNano(),
	}
}

func TestRoundTrip(t *testing.T) {
	s, err := Encode(fields(), key)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Parse("  " + s + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(tok.Fields, fields()) || tok.String() != s {
		t.Fatal("round trip changed the token")
	}
	if err := tok.Verify(key); err != nil {
		t.Fatal(err)
	}
	if err := tok.Verify(bytes.Repeat([]byte{8}, 32)); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("foreign key: %v", err)
	}
	if err := tok.CheckExpiry(epoch); err != nil {
		t.Fatal(err)
	}
	if err := tok.CheckExpiry(epoch.Add(time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expiry: %v", err)
	}
	if tok.ID() != ID(fields().Secret) || tok.Pin() != [32]byte(fields().CaPin) {
		t.Fatal("ID or pin")
	}
	if strings.Contains(s, string(fields().Secret)) {
		t.Fatal("secret appears raw")
	}
}

func TestTamperedTokenIsRefused(t *testing.T) {
	f := fields()
	s, _ := Encode(f, key)
	f.ExpiresAt += int64(24 * time.Hour)
	payload, _ := proto.MarshalOptions{Deterministic: true}.Marshal(f)
	_, macPart, _ := strings.Cut(strings.TrimPrefix(s, Prefix), ".")
	forged := Prefix + base64.RawURLEncoding.EncodeToString(payload) + "." + macPart
	tok, err := Parse(forged)
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.Verify(key); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("extended expiry: err = %v, want ErrBadMAC", err)
	}
}

func TestParseRefuses(t *testing.T) {
	good, _ := Encode(fields(), key)
	encode := func(mut func(f *protocol.WsPairingToken)) string {
		f := fields()
		mut(f)
		p, _ := proto.Marshal(f)
		return Prefix + base64.RawURLEncoding.EncodeToString(p) + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	}
	cases := map[string]string{
		"empty":             "",
		"no prefix":         strings.TrimPrefix(good, Prefix),
		"other version":     strings.Replace(good, "v1", "v2", 1),
		"no mac":            good[:strings.LastIndex(good, ".")],
		"truncated mac":     good[:len(good)-3],
		"not base64":        Prefix + "!!!." + "AAAA",
		"not protobuf":      Prefix + base64.RawURLEncoding.EncodeToString([]byte{0xff, 0xff}) + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
		"too long":          Prefix + strings.Repeat("A", MaxLen),
		"no address":        encode(func(f *protocol.WsPairingToken) { f.Address = "" }),
		"short pin":         encode(func(f *protocol.WsPairingToken) { f.CaPin = f.CaPin[:31] }),
		"bad user":          encode(func(f *protocol.WsPairingToken) { f.UserId = "u 1" }),
		"no role":           encode(func(f *protocol.WsPairingToken) { f.Role = 0 }),
		"short secret":      encode(func(f *protocol.WsPairingToken) { f.Secret = f.Secret[:16] }),
		"no expiry":         encode(func(f *protocol.WsPairingToken) { f.ExpiresAt = 0 }),
		"padded base64":     strings.Replace(good, ".", "=.", 2),
		"space inside":      good[:20] + " " + good[20:],
		"bad workspace":     encode(func(f *protocol.WsPairingToken) { f.WorkspaceId = "" }),
		"role out of range": encode(func(f *protocol.WsPairingToken) { f.Role = 9 }),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if strings.Contains(err.Error(), string(fields().Secret)) {
				t.Fatal("error quotes the secret")
			}
		})
	}
	if _, err := Encode(&protocol.WsPairingToken{}, key); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Encode of empty fields: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	good, _ := Encode(fields(), key)
	f.Add(good)
	f.Add(Prefix + "AAAA.BBBB")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		// Round trip: the wire form is canonical and reparses identically.
		if tok.String() != strings.TrimSpace(s) {
			t.Fatalf("String() = %q, input %q", tok.String(), s)
		}
		again, err := Parse(tok.String())
		if err != nil || !proto.Equal(again.Fields, tok.Fields) {
			t.Fatalf("reparse: %v", err)
		}
		// Re-encoding under a key yields a token that verifies.
		enc, err := Encode(tok.Fields, key)
		if err != nil {
			return // unknown fields can make it longer than MaxLen
		}
		back, err := Parse(enc)
		if err != nil || back.Verify(key) != nil {
			t.Fatalf("re-encoded token does not verify: %v", err)
		}
	})
}
