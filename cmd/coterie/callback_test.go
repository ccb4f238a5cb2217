package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/callback"
)

// lockedBuffer collects a command's stderr while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	t.Logf("coterie %s\nstderr: %s", strings.Join(args, " "), errOut.String())
	return out.String(), err
}

func TestCallbackKeygen(t *testing.T) {
	dir := t.TempDir()
	for _, typ := range []string{"ec", "rsa"} {
		path := filepath.Join(dir, typ+".pem")
		out, err := runCmd(t, "callback", "keygen", "--out", path, "--type", typ)
		if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(path)
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("key file: %v, %v", info, err)
		}
		pub, err := callback.ParsePublicKeyPEM([]byte(out))
		if err != nil {
			t.Fatalf("printed public key: %v", err)
		}
		data, _ := os.ReadFile(path)
		key, err := callback.ParsePrivateKeyPEM(data)
		if err != nil {
			t.Fatal(err)
		}
		if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
			t.Fatal("printed public key does not match the private key")
		}
		if strings.Contains(out, "PRIVATE") {
			t.Fatal("keygen printed the private key")
		}
		again, err := runCmd(t, "callback", "public-key", "--key", path)
		if err != nil || again != out {
			t.Fatalf("public-key printed %q, %v", again, err)
		}
		if _, err := runCmd(t, "callback", "keygen", "--out", path, "--type", typ); !errors.Is(err, os.ErrExist) {
			t.Fatalf("keygen over an existing file: %v", err)
		}
	}
	if _, err := runCmd(t, "callback", "keygen", "--out", filepath.Join(dir, "x.pem"), "--type", "dsa"); !errors.Is(err, callback.ErrKey) {
		t.Fatalf("unknown type: %v", err)
	}
}

func TestCallbackServe(t *testing.T) {
	dir := t.TempDir()
	handlerKey := filepath.Join(dir, "handler.pem")
	handlerPub, err := runCmd(t, "callback", "keygen", "--out", handlerKey)
	if err != nil {
		t.Fatal(err)
	}
	nodeSigner, err := callback.GenerateKey(callback.KeyTypeRSA)
	if err != nil {
		t.Fatal(err)
	}
	nodeKey := nodeSigner.(*rsa.PrivateKey)
	nodePub, err := callback.MarshalPublicKeyPEM(&nodeKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	nodePubFile := filepath.Join(dir, "node-pub.pem")
	if err := os.WriteFile(nodePubFile, nodePub, 0o644); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join("..", "..", "callback", "testdata", "policy.yaml")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root := newRootCmd()
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	root.SetOut(pw)
	root.SetErr(&stderr)
	root.SetArgs([]string{"callback", "serve", "--policy", policy, "--key", handlerKey,
		"--listen", "127.0.0.1:0", "--cosigner-key", nodePubFile})
	done := make(chan error, 1)
	go func() {
		err := root.ExecuteContext(ctx)
		pw.Close()
		done <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line: %v; stderr: %s", err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "callback server listening on ")
	if !ok {
		t.Fatalf("unexpected first line %q", line)
	}

	handlerPubKey, err := callback.ParsePublicKeyPEM([]byte(handlerPub))
	if err != nil {
		t.Fatal(err)
	}
	cfg := callback.DefaultConfig()
	cfg.URL = url
	cfg.HandlerKey = handlerPubKey
	cfg.SigningKey = nodeKey
	client, err := callback.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	tx := &callback.TxRequest{RequestID: "cli-1", Asset: "ETH", AmountStr: "1.5", DestAddress: "0x00000000000000000000000000000000000000a1"}
	if d, err := client.Ask(ctx, tx); err != nil || !d.Approved() {
		t.Fatalf("allowed transaction: %+v, %v", d, err)
	}
	tx = &callback.TxRequest{RequestID: "cli-2", Asset: "ETH", AmountStr: "25", DestAddress: "0x00000000000000000000000000000000000000a1"}
	if d, err := client.Ask(ctx, tx); err != nil || d.Action != callback.ActionReject || d.RejectionReason == "" {
		t.Fatalf("transaction over the limit: %+v, %v", d, err)
	}
	cc := &callback.ConfigChangeRequest{RequestID: "cli-3", Type: callback.ConfigChangeQuorumThreshold}
	if d, err := client.Ask(ctx, cc); err != nil || d.Action != callback.ActionIgnore {
		t.Fatalf("config change: %+v, %v", d, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(stderr.String(), "callback request decided") {
		t.Fatalf("no request log in %s", stderr.String())
	}
}

func TestCallbackServeErrors(t *testing.T) {
	dir := t.TempDir()
	handlerKey := filepath.Join(dir, "handler.pem")
	ecPub, err := runCmd(t, "callback", "keygen", "--out", handlerKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPubFile := filepath.Join(dir, "ec-pub.pem")
	if err := os.WriteFile(ecPubFile, []byte(ecPub), 0o644); err != nil {
		t.Fatal(err)
	}
	badPolicy := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badPolicy, []byte("retry: [{times: 0}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join("..", "..", "callback", "testdata", "policy.yaml")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing flags", []string{}, "required flag"},
		{"missing policy file", []string{"--policy", filepath.Join(dir, "nope.yaml"), "--key", handlerKey}, "no such file"},
		{"bad policy", []string{"--policy", badPolicy, "--key", handlerKey}, "retry[0]"},
		{"public key as handler key", []string{"--policy", policy, "--key", ecPubFile}, "not a private key"},
		{"EC co-signer key", []string{"--policy", policy, "--key", handlerKey, "--cosigner-key", ecPubFile}, "is RSA"},
		{"half TLS", []string{"--policy", policy, "--key", handlerKey, "--tls-cert", ecPubFile}, "--tls-key"},
		{"bad listen address", []string{"--policy", policy, "--key", handlerKey, "--listen", "127.0.0.1:99999"}, "invalid port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runCmd(t, append([]string{"callback", "serve"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
