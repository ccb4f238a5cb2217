package pki

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func clock() time.Time { return now }

func newCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA("test", now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// handshake runs one TLS handshake over loopback and returns the client's
// error and the identity the server saw.
func handshake(t *testing.T, server *tls.Config, client *tls.Config) (Identity, bool, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		id Identity
		ok bool
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{}
			return
		}
		defer c.Close()
		tc := tls.Server(c, server)
		if err := tc.Handshake(); err != nil {
			t.Log("server handshake:", err)
		}
		// TLS 1.3 verifies the client's certificate after the client's
		// handshake returns; a read completes it.
		_, _ = tc.Read(make([]byte, 1))
		id, ok := PeerIdentity(tc.ConnectionState())
		done <- result{id, ok}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err == nil {
		_, _ = c.Write([]byte{1})
		c.Close()
	}
	r := <-done
	return r.id, r.ok, err
}

func TestPinnedHandshake(t *testing.T) {
	ca := newCA(t)
	srv, err := ca.IssueServer([]string{"127.0.0.1", "localhost"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	user, err := ca.NewClient("u-1", UnitUser, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other := newCA(t)

	t.Run("pin and client certificate", func(t *testing.T) {
		id, ok, err := handshake(t, ServerTLS(ca, srv, clock), ClientTLS(ca.Pin(), &user, clock))
		if err != nil {
			t.Fatal(err)
		}
		if !ok || id.CommonName != "u-1" || id.Unit != UnitUser {
			t.Fatalf("identity = %+v, %v", id, ok)
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		_, ok, err := handshake(t, ServerTLS(ca, srv, clock), ClientTLS(ca.Pin(), nil, clock))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Fatal("identity without a certificate")
		}
	})
	t.Run("wrong pin", func(t *testing.T) {
		_, _, err := handshake(t, ServerTLS(ca, srv, clock), ClientTLS(other.Pin(), nil, clock))
		if !errors.Is(err, ErrPinMismatch) {
			t.Fatalf("err = %v, want ErrPinMismatch", err)
		}
	})
	t.Run("client certificate posing as server", func(t *testing.T) {
		fake := user
		fake.Certificate = [][]byte{user.Certificate[0], ca.Certificate().Raw}
		_, _, err := handshake(t, ServerTLS(ca, fake, clock), ClientTLS(ca.Pin(), nil, clock))
		if err == nil {
			t.Fatal("client certificate accepted as a server certificate")
		}
	})
	t.Run("expired server certificate", func(t *testing.T) {
		late := func() time.Time { return now.Add(2 * time.Hour) }
		_, _, err := handshake(t, ServerTLS(ca, srv, clock), ClientTLS(ca.Pin(), nil, late))
		if err == nil {
			t.Fatal("expired server certificate accepted")
		}
	})
	t.Run("client certificate of another CA", func(t *testing.T) {
		stranger, err := other.NewClient("u-1", UnitUser, now, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, ok, _ := handshake(t, ServerTLS(ca, srv, clock), ClientTLS(ca.Pin(), &stranger, clock))
		if ok {
			t.Fatal("server accepted a foreign client certificate")
		}
	})
}

func TestIssueClientFromCSR(t *testing.T) {
	ca := newCA(t)
	csr, key, err := NewCSR()
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.IssueClient(csr, "u-7", UnitUser, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := KeyPairFromDER(der, key)
	if err != nil {
		t.Fatal(err)
	}
	if kp.Leaf.Subject.CommonName != "u-7" {
		t.Fatalf("CN = %q", kp.Leaf.Subject.CommonName)
	}
	bad := append([]byte(nil), csr...)
	bad[len(bad)-5] ^= 0xff
	for name, in := range map[string][]byte{"garbage": []byte("nope"), "flipped signature": bad, "empty": nil} {
		if _, err := ca.IssueClient(in, "u", UnitUser, now, time.Hour); !errors.Is(err, ErrBadCSR) {
			t.Errorf("%s: err = %v, want ErrBadCSR", name, err)
		}
	}
	_, otherKey, _ := NewCSR()
	if _, err := KeyPairFromDER(der, otherKey); !errors.Is(err, ErrBadPEM) {
		t.Errorf("mismatched key: err = %v", err)
	}
}

func TestPEMRoundTrips(t *testing.T) {
	ca := newCA(t)
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadCA(ca.CertPEM(), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if back.Pin() != ca.Pin() {
		t.Fatal("pin changed across PEM")
	}
	k1, _ := ca.DeriveKey("token")
	k2, _ := back.DeriveKey("token")
	k3, _ := back.DeriveKey("other")
	if string(k1) != string(k2) || string(k1) == string(k3) || len(k1) != 32 {
		t.Fatal("derived keys are not stable per label")
	}
	other := newCA(t)
	otherKey, _ := other.KeyPEM()
	if _, err := LoadCA(ca.CertPEM(), otherKey); !errors.Is(err, ErrBadPEM) {
		t.Fatalf("mismatched CA key: err = %v", err)
	}

	admin, err := ca.NewClient("admin", UnitAdmin, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncodeKeyPair(admin)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ParseKeyPair(b)
	if err != nil {
		t.Fatal(err)
	}
	if kp.Leaf.Subject.OrganizationalUnit[0] != UnitAdmin {
		t.Fatal("unit lost")
	}
	for name, in := range map[string][]byte{"empty": nil, "cert only": ca.CertPEM(), "key only": otherKey} {
		if _, err := ParseKeyPair(in); !errors.Is(err, ErrBadPEM) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
