package node

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

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
// routerConfig returns the node's callback settings with no cluster
// handler (its client approves by itself), and a handler's public key as
// PKIX DER.
func routerConfig(t *testing.T) (callback.Config, []byte) {
	t.Helper()
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
	return cfg, der
}

func TestHandlerRouterNeverApprovesForABadUserHandler(t *testing.T) {
	cfg, der := routerConfig(t)
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

// TestHandlerRouterDropsClearedHandlers: once a user's handler is cleared,
// the next question, about any user, makes the router forget that user's
// client and close its idle connection to the old handler; the user's
// questions go to the cluster's handler.
func TestHandlerRouterDropsClearedHandlers(t *testing.T) {
	closed := make(chan struct{})
	var once sync.Once
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable) // an answer that leaves the connection idle
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			once.Do(func() { close(closed) })
		}
	}
	srv.Start()
	defer srv.Close()
	cfg, der := routerConfig(t)
	users := fakeUserHandlers{"ws/u1": {UserID: "ws/u1", URL: srv.URL, HandlerKey: der}}
	r, err := newHandlerRouter(cfg, users)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	req := &callback.ConfigChangeRequest{Type: callback.ConfigAddUser, RequestID: "c1"}
	d := r.decider("ws/u1")
	if _, err := d.Ask(context.Background(), req); !errors.Is(err, callback.ErrHTTPStatus) {
		t.Fatalf("ask the user's handler: %v, want its HTTP error", err)
	}

	delete(users, "ws/u1")
	if _, err := r.decider("ws/other").Ask(context.Background(), req); err != nil {
		t.Fatalf("ask about another user: %v", err)
	}
	r.mu.Lock()
	kept := len(r.clients)
	r.mu.Unlock()
	if kept != 0 {
		t.Fatalf("the router keeps %d clients after the user's handler was cleared", kept)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection to the cleared handler stays open")
	}
	if dec, err := d.Ask(context.Background(), req); err != nil || !dec.Auto {
		t.Fatalf("ask after the clear: %+v %v, want the cluster's automatic approval", dec, err)
	}
}

// TestHandlerRouterRefusesAfterClose: a question after Close fails, as
// retryable, without building a client that nothing would close.
func TestHandlerRouterRefusesAfterClose(t *testing.T) {
	cfg, der := routerConfig(t)
	users := fakeUserHandlers{"ws/u1": {UserID: "ws/u1", URL: "https://127.0.0.1:1", HandlerKey: der}}
	r, err := newHandlerRouter(cfg, users)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	req := &callback.ConfigChangeRequest{Type: callback.ConfigAddUser, RequestID: "c1"}
	for _, user := range []string{"ws/u1", "ws/other"} {
		d, err := r.decider(user).Ask(context.Background(), req)
		if !errors.Is(err, errRouterClosed) || !callback.Retryable(err) || d.Action == callback.ActionApprove {
			t.Fatalf("%s: ask after Close: %+v %v, want a retryable errRouterClosed", user, d, err)
		}
	}
	if len(r.clients) != 0 {
		t.Fatalf("Close left %d clients, or one was built after it", len(r.clients))
	}
}
