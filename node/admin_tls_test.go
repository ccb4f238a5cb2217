package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/callback"
)

// writeAdminCert writes a self-signed certificate for 127.0.0.1 and its
// key into dir and returns their paths.
func writeAdminCert(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "coterie admin test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "admin-cert.pem"), filepath.Join(dir, "admin-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// writeHandlerKey writes a callback handler's public key (PEM) to path.
func writeHandlerKey(t testing.TB, path string) {
	t.Helper()
	key, err := callback.GenerateKey(callback.KeyTypeEC)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := callback.MarshalPublicKeyPEM(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAdminTLS serves the admin API over TLS: the admin client, which
// trusts the configured certificate, works; plain HTTP, TLS 1.2 and a
// client pinned to another certificate do not get through.
func TestAdminTLS(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Admin.TLSCert, cfg.Admin.TLSKey = writeAdminCert(t, dir)
	n := startNode(t, cfg)
	if got, want := n.AdminURL(), "https://"+n.AdminAddr(); got != want {
		t.Fatalf("AdminURL = %s, want %s", got, want)
	}

	ac, err := NewAdminClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 30*time.Second)
	if st, err := ac.Status(ctx); err != nil || !st.Ready {
		t.Fatalf("status over TLS: %+v %v", st, err)
	}
	if users, err := ac.Users(ctx); err != nil || len(users) != 0 {
		t.Fatalf("users over TLS: %v %v", users, err)
	}

	if resp, err := http.Get("http://" + n.AdminAddr() + PathHealth); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200")
		}
	}
	// Only the version is under test here, so the chain is not checked.
	tls12 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true,
	}}}
	if resp, err := tls12.Get(n.AdminURL() + PathHealth); err == nil {
		resp.Body.Close()
		t.Fatal("a TLS 1.2 client got an answer")
	}

	other := cfg
	other.Admin.TLSCert, other.Admin.TLSKey = writeAdminCert(t, t.TempDir())
	oc, err := NewAdminClient(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oc.Status(ctx); !errors.Is(err, ErrAdminAPI) {
		t.Fatalf("a client pinned to another certificate: %v", err)
	}
}
