package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	decredecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace"
	"github.com/coterie-mpc/coterie/workspace/client"
	"github.com/coterie-mpc/coterie/workspace/verify"
)

// wsFixture is the workspace tests' fixture (workspace/internal/fixturegen):
// a workspace directory with a paired 2-of-2 signer of role both, and the
// node's side of it.
const wsFixture = "../../workspace/testdata/signer-2of2"

// wsFixtureNode is the fixture's node: a client of the served copy, its
// key share and its presignatures.
type wsFixtureNode struct {
	c       *client.Client
	engine  *mpc.Engine
	share   *mpc.KeyShare
	key     *protocol.WsSigningKey
	presigs *mpc.MemPresignStore
	ids     []mpc.PresignatureID
}

// serveWsFixture copies the fixture's workspace, serves it in a child
// process and connects its node.
func serveWsFixture(t *testing.T) (string, *wsFixtureNode) {
	t.Helper()
	src := filepath.Join(wsFixture, "ws")
	dir := filepath.Join(t.TempDir(), "ws")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	startWsServer(t, dir, "127.0.0.1:0")
	addr, err := os.ReadFile(filepath.Join(dir, workspace.FileAddress))
	if err != nil {
		t.Fatal(err)
	}

	b, err := os.ReadFile(filepath.Join(wsFixture, "node.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Credentials   []byte   `json:"credentials"`
		KeyShare      []byte   `json:"key_share"`
		SigningKey    []byte   `json:"signing_key"`
		Presignatures [][]byte `json:"presignatures"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	creds, err := client.UnmarshalCredentials(f.Credentials)
	if err != nil {
		t.Fatal(err)
	}
	creds.Address = strings.TrimSpace(string(addr))
	n := &wsFixtureNode{presigs: mpc.NewMemPresignStore(), key: &protocol.WsSigningKey{}}
	if n.c, err = client.Dial(creds); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.c.Close() })
	if n.engine, err = mpc.New(mpc.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	if n.share, err = mpc.UnmarshalKeyShare(f.KeyShare); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(f.SigningKey, n.key); err != nil {
		t.Fatal(err)
	}
	for _, raw := range f.Presignatures {
		pre, err := mpc.UnmarshalPresignature(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.presigs.Put(context.Background(), pre); err != nil {
			t.Fatal(err)
		}
		n.ids = append(n.ids, pre.ID())
	}
	return dir, n
}

// wsListed is a request as `workspace requests --json` prints it.
type wsListed struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	Reason      string `json:"reason"`
	Transaction struct {
		Asset        string `json:"asset"`
		Operation    string `json:"operation"`
		Destinations []struct {
			Amount string `json:"amount"`
		} `json:"destinations"`
		Digests []struct {
			Digest         []byte   `json:"digest"`
			DerivationPath []uint32 `json:"derivation_path"`
		} `json:"digests"`
	} `json:"transaction"`
	Signatures []struct {
		Index      uint32  `json:"index"`
		Signature  []byte  `json:"signature"`
		RecoveryID *uint32 `json:"recovery_id"`
		PublicKey  []byte  `json:"public_key"`
	} `json:"signatures"`
}

func wsRequestsJSON(t *testing.T, dir string) map[string]wsListed {
	t.Helper()
	out, err := wsRun(t, "workspace", "requests", "--data-dir", dir, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var listed []wsListed
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("requests --json: %v\n%s", err, out)
	}
	byID := map[string]wsListed{}
	for _, r := range listed {
		byID[r.ID] = r
	}
	return byID
}

// TestWorkspaceSubmitRaw submits a RAW request with two caller-chosen
// digests and paths through the CLI, refuses malformed ones with a clear
// error before anything is sent, signs the request through the relay, and
// checks that `requests` shows each signature's recovery ID and derived
// public key, from which decred's recovery finds that key. It also checks
// that `submit tx` fills in the destination's amount and that an ignored
// config change shows as such.
func TestWorkspaceSubmitRaw(t *testing.T) {
	dir, n := serveWsFixture(t)
	user := n.c.Credentials().UserID
	d1 := bytes.Repeat([]byte{0x11}, 32)
	d2 := bytes.Repeat([]byte{0x22}, 32)
	raw := func(args ...string) (string, error) {
		return wsRun(t, append([]string{"workspace", "submit", "raw", "--data-dir", dir, "--user", user}, args...)...)
	}

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"bad hex", []string{"--digest", "zz" + hex.EncodeToString(d1[1:]), "--path", "m/44/60/0/0/7"}, []string{"--digest 1", "is not hex"}},
		{"short digest", []string{"--digest", hex.EncodeToString(d1[:31]), "--path", "m/44/60/0/0/7"}, []string{"--digest 1 is 31 bytes; a digest is 32 bytes"}},
		{"hardened path", []string{"--digest", hex.EncodeToString(d1), "--path", "m/44'/60/0/0/7"}, []string{"--path 1", "hardened"}},
		{"no m", []string{"--digest", hex.EncodeToString(d1), "--path", "44/60/0/0/7"}, []string{"--path 1", `does not start with "m"`}},
		{"empty step", []string{"--digest", hex.EncodeToString(d1), "--path", "m/44//0"}, []string{"--path 1", "bad step"}},
		{"master key", []string{"--digest", hex.EncodeToString(d1), "--path", "m"}, []string{"--path 1", "1 to 10 steps"}},
		{"counts differ", []string{"--digest", hex.EncodeToString(d1), "--digest", hex.EncodeToString(d2), "--path", "m/44/60/0/0/7"}, []string{"2 --digest but 1 --path"}},
		{"every problem", []string{"--digest", "xy", "--path", "m/1", "--digest", hex.EncodeToString(d2), "--path", "m/1h"}, []string{"--digest 1", "--path 2"}},
		{"unknown coin", []string{"--digest", hex.EncodeToString(d1), "--path", "m/44/12345/0"}, []string{"--asset is required"}},
	} {
		_, err := raw(tc.args...)
		if err == nil {
			t.Fatalf("%s: accepted", tc.name)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tc.name, err, w)
			}
		}
	}
	if got := wsRequestsJSON(t, dir); len(got) != 0 {
		t.Fatalf("refused submissions queued %d requests", len(got))
	}

	out, err := raw("--digest", hex.EncodeToString(d1), "--path", "m/44/60/0/0/7", "--digest", "0x"+hex.EncodeToString(d2), "--path", "m/44/60/0/0/8")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	r := wsRequestsJSON(t, dir)[id]
	if r.Transaction.Operation != "RAW" || r.Transaction.Asset != "ETH" || len(r.Transaction.Digests) != 2 ||
		!bytes.Equal(r.Transaction.Digests[0].Digest, d1) || !bytes.Equal(r.Transaction.Digests[1].Digest, d2) ||
		mpc.Path(r.Transaction.Digests[1].DerivationPath).String() != "m/44/60/0/0/8" {
		t.Fatalf("raw request %s as listed: %+v", id, r)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := n.c.GetRequest(ctx, &protocol.WsGetRequestRequest{RequestId: id})
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint32(2) {
		if _, _, err := n.c.Sign(ctx, n.engine, n.share, n.key, n.presigs, n.ids[i], req, i); err != nil {
			t.Fatalf("sign digest %d: %v", i, err)
		}
	}
	r = wsRequestsJSON(t, dir)[id]
	if r.State != "WS_REQUEST_STATE_SIGNED" || len(r.Signatures) != 2 {
		t.Fatalf("after signing: %+v", r)
	}
	table, err := wsRun(t, "workspace", "requests", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, sig := range r.Signatures {
		d := req.GetTransaction().GetDigests()[i]
		want, err := verify.DerivedKey(n.key, d)
		if err != nil {
			t.Fatal(err)
		}
		if sig.RecoveryID == nil || !bytes.Equal(sig.PublicKey, want) {
			t.Fatalf("digest %d: listed recovery ID %v, public key %x; want the derived key %x", i, sig.RecoveryID, sig.PublicKey, want)
		}
		pub, _, err := decredecdsa.RecoverCompact(append([]byte{byte(27 + 4 + *sig.RecoveryID)}, sig.Signature...), d.GetDigest())
		if err != nil || !bytes.Equal(pub.SerializeCompressed(), want) {
			t.Fatalf("digest %d: recovered %v, %v; want %x", i, pub, err, want)
		}
		line := "digest " + string(rune('0'+i)) + " " + mpc.Path(d.GetDerivationPath()).String() + ": v " + string(rune('0'+*sig.RecoveryID)) +
			", public key " + hex.EncodeToString(want) + ", signature " + hex.EncodeToString(sig.Signature)
		if !strings.Contains(table, line) {
			t.Fatalf("the table lacks %q:\n%s", line, table)
		}
	}

	// `submit tx` states the destination's amount.
	out, err = wsRun(t, "workspace", "submit", "tx", "--data-dir", dir, "--user", user, "--asset", "ETH", "--amount", "2.25", "--to", "0xabc")
	if err != nil {
		t.Fatal(err)
	}
	if got := wsRequestsJSON(t, dir)[strings.TrimSpace(out)].Transaction.Destinations; len(got) != 1 || got[0].Amount != "2.25" {
		t.Fatalf("submit tx destinations %+v, want one with amount 2.25", got)
	}

	// A config change the co-signer ignored.
	out, err = wsRun(t, "workspace", "submit", "config-change", "--data-dir", dir, "--user", user, "--type", "EXCHANGE")
	if err != nil {
		t.Fatal(err)
	}
	ccID := strings.TrimSpace(out)
	if _, err := n.c.IgnoreRequest(ctx, &protocol.WsIgnoreRequest{RequestId: ccID, Reason: "for the admins"}); err != nil {
		t.Fatal(err)
	}
	table, err = wsRun(t, "workspace", "requests", "--data-dir", dir, "--state", "ignored")
	if err != nil || !strings.Contains(table, ccID) || !strings.Contains(table, "ignored by this co-signer: for the admins") || strings.Contains(table, id) {
		t.Fatalf("requests --state ignored: %v\n%s", err, table)
	}
	if got := wsRequestsJSON(t, dir)[ccID]; got.State != "WS_REQUEST_STATE_IGNORED" || got.Reason != "ignored by this co-signer: for the admins" {
		t.Fatalf("ignored request as JSON: %+v", got)
	}
}

// TestWorkspaceSetupFlags restarts `workspace serve` on a 2-of-2 directory
// with default flags, which must keep its setup, and with a contradicting
// flag, which must fail naming both values and leave the directory as it
// was.
func TestWorkspaceSetupFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ws")
	srv := startWsServer(t, dir, "127.0.0.1:0")
	if !strings.HasSuffix(srv.setup, ": cloud co-signers 1, quorum 2") || !strings.HasPrefix(srv.setup, "workspace ws-") {
		t.Fatalf("first start: %q", srv.setup)
	}
	wsID := strings.Fields(srv.setup)[1]
	srv.kill()

	srv = startWsServerFlags(t, dir, "127.0.0.1:0")
	if srv.setup != "workspace "+wsID+" cloud co-signers 1, quorum 2" {
		t.Fatalf("restart with default flags: %q, want workspace %s with 1 cloud co-signer, quorum 2", srv.setup, wsID)
	}
	srv.kill()

	_, err := wsRun(t, "workspace", "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--cloud-cosigners", "2")
	if err == nil || !strings.Contains(err.Error(), "cloud co-signers: 2 asked for, but it has 1") {
		t.Fatalf("restart with --cloud-cosigners 2: %v", err)
	}
	_, err = wsRun(t, "workspace", "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--quorum", "3")
	if err == nil || !strings.Contains(err.Error(), "quorum: 3 asked for, but it has 2") {
		t.Fatalf("restart with --quorum 3: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, workspace.DirCosigners, "cloud-2")); err == nil {
		t.Fatal("a refused start created a second cloud co-signer")
	}
	srv = startWsServerFlags(t, dir, "127.0.0.1:0", "--quorum", "2")
	if srv.setup != "workspace "+wsID+" cloud co-signers 1, quorum 2" {
		t.Fatalf("restart with the stored quorum: %q", srv.setup)
	}
}
