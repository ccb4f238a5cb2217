package node

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/cluster"
)

// userHandlers reads the API users' own callback handlers.
// *cluster.FSM implements it; its copy is the caller's.
type userHandlers interface {
	UserCallback(user string) (cluster.UserCallback, bool)
}

var _ userHandlers = (*cluster.FSM)(nil)

// handlerRouter chooses the callback handler of each request: the one its
// API user has of its own in the cluster state, or else the cluster's. The
// choice is made afresh at every attempt, so a handler set or cleared
// through any node applies to the next question on every node, with no
// restart.
//
// A user's handler is reached with this node's settings for the cluster's
// handler: the CA file, the timeout, the answers' freshness rules and the
// cluster's signing key. It is never "none": the cluster state refuses a
// user record without a URL, and so does the router, so no user is ever
// approved automatically in place of asking a handler (I5).
//
// A user's client lives while the cluster names that handler for the
// user: the first question after the record is cleared or replaced, about
// any user, drops it and closes its idle connections. After Close every
// question fails, so no client is built that nothing would close.
//
// It is safe for concurrent use.
type handlerRouter struct {
	base    callback.Config  // the node's callback settings, without URL and HandlerKey
	cluster *callback.Client // the cluster's handler, as this node's config names it
	users   userHandlers

	mu      sync.Mutex
	closed  bool
	clients map[string]*userClient // by user record id
}

// errRouterClosed is returned, wrapped in callback.ErrUnreachable, by a
// Decider whose router is closed: the node stops, and a request asked
// about then is asked again when it resumes, never failed for it.
var errRouterClosed = errors.New("node: callback handlers closed")

// userClient is the client of one user's handler, and what it was built
// for.
type userClient struct {
	url    string
	key    []byte
	client *callback.Client
}

// newHandlerRouter builds the router. cfg is the node's callback client
// config (callbackConfig): its URL and key name the cluster's handler, or
// none.
func newHandlerRouter(cfg callback.Config, users userHandlers) (*handlerRouter, error) {
	def, err := callback.New(cfg)
	if err != nil {
		return nil, err
	}
	base := cfg
	base.URL, base.HandlerKey = "", nil
	return &handlerRouter{base: base, cluster: def, users: users, clients: map[string]*userClient{}}, nil
}

// decider returns the Decider of the API user whose record id is user.
func (r *handlerRouter) decider(user string) actors.Decider {
	return &routedDecider{router: r, user: user}
}

// serves reports whether c was built for the handler h names.
func (c *userClient) serves(h cluster.UserCallback) bool {
	return c.url == h.URL && bytes.Equal(c.key, h.HandlerKey)
}

// client returns the client that asks user's handler.
func (r *handlerRouter) client(user string) (*callback.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("%w: %w", callback.ErrUnreachable, errRouterClosed)
	}
	r.prune()
	h, ok := r.users.UserCallback(user)
	if !ok {
		return r.cluster, nil
	}
	if c, ok := r.clients[user]; ok && c.serves(h) {
		return c.client, nil
	}
	cfg, err := r.userConfig(h.URL, h.HandlerKey)
	if err != nil {
		return nil, fmt.Errorf("%w: API user %s: %w", callback.ErrInvalidConfig, user, err)
	}
	c, err := callback.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("API user %s: %w", user, err)
	}
	r.drop(user)
	r.clients[user] = &userClient{url: h.URL, key: h.HandlerKey, client: c}
	r.base.Logger.Info("callback handler of a user in use", "user", user, "handler", describeHandler(h.URL, h.HandlerKey))
	return c, nil
}

// prune drops the clients of the handlers the cluster no longer names for
// their users. r.mu is held.
func (r *handlerRouter) prune() {
	for user, c := range r.clients {
		if h, ok := r.users.UserCallback(user); !ok || !c.serves(h) {
			r.drop(user)
		}
	}
}

// drop forgets the client of user's former handler, if any, and closes
// it. Close drops idle connections only: an Ask in flight on it still
// finishes, and its connection then closes after the client's idle
// timeout. r.mu is held.
func (r *handlerRouter) drop(user string) {
	if c, ok := r.clients[user]; ok {
		c.client.Close()
		delete(r.clients, user)
	}
}

// userConfig is the client config of a user's handler: the node's
// settings with the user's URL and key (PKIX DER). It refuses an empty
// URL, which would approve automatically.
func (r *handlerRouter) userConfig(url string, der []byte) (callback.Config, error) {
	if url == "" {
		return callback.Config{}, fmt.Errorf("a user's callback handler has no URL")
	}
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return callback.Config{}, fmt.Errorf("handler key does not parse")
	}
	cfg := r.base
	cfg.URL, cfg.HandlerKey = url, key
	return cfg, cfg.Validate()
}

// Close closes every client the router built; the Deciders fail from
// then on.
func (r *handlerRouter) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.cluster.Close()
	for user := range r.clients {
		r.drop(user)
	}
}

// routedDecider is one API user's Decider: each attempt asks the handler
// the router chooses for the user at that moment.
type routedDecider struct {
	router *handlerRouter
	user   string
}

var _ actors.Decider = (*routedDecider)(nil)

// Ask implements actors.Decider. A user's handler that cannot be used
// (a record no client accepts) is an error that is not retried: the
// request fails, and is never approved.
func (d *routedDecider) Ask(ctx context.Context, req callback.Request) (callback.Decision, error) {
	c, err := d.router.client(d.user)
	if err != nil {
		return callback.Decision{}, err
	}
	return c.Ask(ctx, req)
}
