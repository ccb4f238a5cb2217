package node

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"log/slog"
	"testing"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/cluster"
)

// fakeUserHandlers is a map of users' handlers, in place of the FSM.
type fakeUserHandlers map[string]cluster.UserCallback

func (f fakeUserHandlers) UserCallback(user string) (cluster.UserCallback, bool) {
	h, ok := f[user]
	return h, ok
}

// TestHandlerRouterNeverApprovesForABadUserHandler: where the cluster has
// no handler (its client approves by itself), a user whose own record
// cannot be used gets an error that is not retried, never the automatic
// approval; a user without a record gets the cluster's choice.
func TestHandlerRouterNeverApprovesForABadUserHandler(t *testing.T) {
	signing, err := callback.GenerateKey(callback.KeyTypeRSA)
	if err != nil {
		t.Fatal(err)
	}
	handler, err := callback.GenerateKey(callback.KeyTypeEC)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(handler.Public())
	if err != nil {
		t.Fatal(err)
	}
	cfg := callback.DefaultConfig()
	cfg.SigningKey = signing.(*rsa.PrivateKey)
	cfg.Logger = testLogger(t, slog.LevelInfo)
	users := fakeUserHandlers{
		"ws/no-url":  {UserID: "ws/no-url", HandlerKey: der},
		"ws/bad-key": {UserID: "ws/bad-key", URL: "https://h.example", HandlerKey: []byte("junk")},
		"ws/http":    {UserID: "ws/http", URL: "http://h.example", HandlerKey: der},
	}
	r, err := newHandlerRouter(cfg, users)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	req := &callback.ConfigChangeRequest{Type: callback.ConfigAddUser, RequestID: "c1"}
	for user := range users {
		t.Run(user, func(t *testing.T) {
			d, err := r.decider(user).Ask(context.Background(), req)
			if !errors.Is(err, callback.ErrInvalidConfig) || callback.Retryable(err) || d.Action == callback.ActionApprove {
				t.Fatalf("got %+v, %v; want a non-retryable invalid config", d, err)
			}
		})
	}
	d, err := r.decider("ws/other").Ask(context.Background(), req)
	if err != nil || !d.Auto {
		t.Fatalf("a user without a handler of its own: %+v %v, want the cluster's automatic approval", d, err)
	}
}
