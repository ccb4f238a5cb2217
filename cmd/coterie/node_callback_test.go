package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/node"
)

// TestNodeClusterCallbackUser sets, shows and clears an API user's own
// callback handler through the CLI, and refuses bad input with its reason,
// changing nothing.
func TestNodeClusterCallbackUser(t *testing.T) {
	e := startInProcessNode(t, "")
	id, tok := e.approverToken(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u, err := e.node.Pair(ctx, node.PairRequest{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	key, err := callback.GenerateKey(callback.KeyTypeEC)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := callback.MarshalPublicKeyPEM(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(e.dir, "risk.pem")
	if err := os.WriteFile(keyFile, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	const url = "https://risk.example/cb"
	cb := func(args ...string) (string, error) {
		out, _, err := runIO(t, "", append([]string{"node", "cluster", "callback", "--config", e.config}, args...)...)
		return out, err
	}

	out, err := cb("--user", id, "--url", url, "--public-key", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	rec := u.WorkspaceID + "/" + id
	for _, want := range []string{"callback handler  none", "API users with a handler of their own", "USER", rec, url} {
		if !strings.Contains(out, want) {
			t.Errorf("set prints no %q:\n%s", want, out)
		}
	}
	out, err = cb("--json")
	var l node.CallbackListing
	if err != nil || json.Unmarshal([]byte(out), &l) != nil || len(l.Users) != 1 || l.Users[0].User != rec || l.Users[0].URL != url {
		t.Fatalf("--json: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
		is   error
	}{
		{"--set with --user", []string{"--set", "--user", id}, "takes no --user", nil},
		{"--url without --user", []string{"--url", url, "--public-key", keyFile}, "name it with --user", nil},
		{"--clear with --url", []string{"--user", id, "--clear", "--url", url}, "--clear takes no --url", nil},
		{"--url without a key", []string{"--user", id, "--url", url}, "both --url and --public-key", nil},
		{"--user alone", []string{"--user", id}, "or --clear", nil},
		{"a missing key file", []string{"--user", id, "--url", url, "--public-key", filepath.Join(e.dir, "nope.pem")}, "no such file", nil},
		{"an unknown user", []string{"--user", "nobody", "--url", url, "--public-key", keyFile}, `"nobody"`, cluster.ErrUnknownUser},
		{"plain http", []string{"--user", id, "--url", "http://risk.example/cb", "--public-key", keyFile}, "use https", node.ErrBadCallbackHandler},
		{"not a key", []string{"--user", id, "--url", url, "--public-key", e.config}, "no PEM block", node.ErrBadCallbackHandler},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cb(tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("error %v, want one that says %q (%v)", err, tc.want, tc.is)
			}
		})
	}
	if hs := e.node.Cluster().FSM().UserCallbacks(); len(hs) != 1 || hs[0].URL != url {
		t.Fatalf("a refusal changed the handlers: %+v", hs)
	}

	if out, err = cb("--user", id, "--clear"); err != nil || !strings.Contains(out, "no API user has a handler of its own") {
		t.Fatalf("--clear: %v\n%s", err, out)
	}
	if _, err := cb("--user", id, "--clear"); !errors.Is(err, cluster.ErrNoUserCallback) {
		t.Fatalf("a second --clear: %v", err)
	}
}
