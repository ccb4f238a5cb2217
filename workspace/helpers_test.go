package workspace_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace"
	"github.com/coterie-mpc/coterie/workspace/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// env is a served workspace and its admin client.
type env struct {
	t     testing.TB
	dir   string
	clock clock.Clock
	ws    *workspace.Workspace
	admin *client.Admin
}

type tlog struct{ t testing.TB }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(strings.TrimSpace(string(p))); return len(p), nil }

// serve opens and starts a 2-of-2 workspace (one cloud co-signer) in dir.
func serve(t testing.TB, dir string, clk clock.Clock) *env {
	t.Helper()
	return serveAt(t, dir, "127.0.0.1:0", clk)
}

// serveAt is serve on a given listen address (a restart reuses the port
// that pairing tokens named).
func serveAt(t testing.TB, dir, listen string, clk clock.Clock) *env {
	t.Helper()
	cfg := workspace.DefaultConfig()
	cfg.DataDir = dir
	cfg.Listen = listen
	cfg.CloudCosigners = 1
	cfg.Quorum = 2
	cfg.Clock = clk
	cfg.Logger = slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ws, err := workspace.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ws.Start()
	admin, err := client.DialAdmin(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, clock: clk, ws: ws, admin: admin}
	t.Cleanup(e.stop)
	return e
}

func (e *env) stop() {
	if e.ws == nil {
		return
	}
	e.admin.Close()
	if err := e.ws.Close(); err != nil {
		e.t.Error(err)
	}
	e.ws = nil
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// node is an in-process co-signer party: a paired user with its keys.
type node struct {
	c          *client.Client
	creds      *client.Credentials
	pair       *protocol.WsPairResponse
	approval   ed25519.PrivateKey
	engine     *mpc.Engine
	share      *mpc.KeyShare
	key        *protocol.WsSigningKey
	presigs    *mpc.MemPresignStore
	presignIDs []mpc.PresignatureID
	// copies keeps each presignature's encoding, so a test can play a node
	// that tries to use one twice.
	copies map[mpc.PresignatureID][]byte
}

// fixtureNode mirrors internal/fixturegen's node.json.
type fixtureNode struct {
	Credentials   []byte   `json:"credentials"`
	ApprovalKey   []byte   `json:"approval_key"`
	KeyShare      []byte   `json:"key_share"`
	SigningKey    []byte   `json:"signing_key"`
	Presignatures [][]byte `json:"presignatures"`
}

// fixtureDir copies the generated fixture's workspace into a fresh
// directory (see internal/fixturegen).
func fixtureDir(t testing.TB) string {
	t.Helper()
	src := filepath.Join("testdata", "signer-2of2", "ws")
	dst := filepath.Join(t.TempDir(), "ws")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// fixtureSigner returns the fixture's paired signer (role both), connected
// to e, with its key share and presignatures in its pool.
func (e *env) fixtureSigner() *node {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "signer-2of2", "node.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var f fixtureNode
	if err := json.Unmarshal(b, &f); err != nil {
		e.t.Fatal(err)
	}
	creds, err := client.UnmarshalCredentials(f.Credentials)
	if err != nil {
		e.t.Fatal(err)
	}
	creds.Address = e.ws.Addr()
	c, err := client.Dial(creds)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	eng, err := mpc.New(mpc.DefaultConfig())
	if err != nil {
		e.t.Fatal(err)
	}
	n := &node{c: c, creds: creds, approval: ed25519.NewKeyFromSeed(f.ApprovalKey), engine: eng, presigs: mpc.NewMemPresignStore(), copies: map[mpc.PresignatureID][]byte{}}
	if n.share, err = mpc.UnmarshalKeyShare(f.KeyShare); err != nil {
		e.t.Fatal(err)
	}
	n.key = &protocol.WsSigningKey{}
	if err := proto.Unmarshal(f.SigningKey, n.key); err != nil {
		e.t.Fatal(err)
	}
	for _, raw := range f.Presignatures {
		pre, err := mpc.UnmarshalPresignature(raw)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := n.presigs.Put(context.Background(), pre); err != nil {
			e.t.Fatal(err)
		}
		n.presignIDs = append(n.presignIDs, pre.ID())
		n.copies[pre.ID()] = raw
	}
	return n
}

// createUser makes a user and returns its pairing token.
func (e *env) createUser(role protocol.WsRole) (*protocol.WsUser, string) {
	e.t.Helper()
	resp, err := e.admin.CreateUser(ctx(e.t), &protocol.WsCreateUserRequest{Name: "node", Role: role})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.User, resp.PairingToken
}

// pair pairs a new user of role; signers also run key generation.
func (e *env) pair(role protocol.WsRole) *node {
	e.t.Helper()
	_, tok := e.createUser(role)
	return e.pairToken(tok)
}

func (e *env) pairToken(tok string) *node {
	e.t.Helper()
	n := e.pairOnly(tok)
	if n.pair.GetNodePartyId() != "" {
		var err error
		n.share, n.key, err = n.c.Keygen(ctx(e.t), n.engine, n.pair)
		if err != nil {
			e.t.Fatal(err)
		}
	}
	return n
}

// pairOnly redeems a token without running key generation.
func (e *env) pairOnly(tok string) *node {
	e.t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	cb, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	creds, resp, err := client.Pair(ctx(e.t), client.PairConfig{Token: tok, ApprovalKey: pub, CallbackKey: cb.Public()})
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := client.Dial(creds)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	eng, err := mpc.New(mpc.DefaultConfig())
	if err != nil {
		e.t.Fatal(err)
	}
	return &node{c: c, creds: creds, pair: resp, approval: priv, engine: eng, presigs: mpc.NewMemPresignStore()}
}

// presign adds count presignatures to the node's pool.
func (n *node) presign(t testing.TB, count int) {
	t.Helper()
	for range count {
		pre, err := n.c.Presign(ctx(t), n.engine, n.share, n.key)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.presigs.Put(ctx(t), pre); err != nil {
			t.Fatal(err)
		}
		n.presignIDs = append(n.presignIDs, pre.ID())
		b, err := pre.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if n.copies == nil {
			n.copies = make(map[mpc.PresignatureID][]byte)
		}
		n.copies[pre.ID()] = b
	}
}

// nextPresign pops a presignature ID from the pool.
func (n *node) nextPresign(t testing.TB) mpc.PresignatureID {
	t.Helper()
	if len(n.presignIDs) == 0 {
		t.Fatal("presignature pool is empty")
	}
	id := n.presignIDs[0]
	n.presignIDs = n.presignIDs[1:]
	return id
}

func (e *env) submitTx(userID, idem string) *protocol.WsRequest {
	e.t.Helper()
	r, err := e.admin.SubmitTransaction(ctx(e.t), &protocol.WsSubmitTransactionRequest{UserId: userID, IdempotencyKey: idem, Transaction: tx()})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func tx() *protocol.WsTransaction {
	return &protocol.WsTransaction{
		Asset: "ETH", Amount: "1.5",
		Source:       &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
		Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}}},
		Note:         "test payout",
	}
}

// wantCode fails unless err is a gRPC status with code and a message
// containing fragment.
func wantCode(t testing.TB, what string, err error, code codes.Code, fragment string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code || !strings.Contains(st.Message(), fragment) {
		t.Errorf("%s: got %v, want %s containing %q", what, err, code, fragment)
		return
	}
	t.Logf("%s: %s: %s", what, st.Code(), st.Message())
}
