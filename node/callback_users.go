package node

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/cluster"
)

// ErrBadCallbackHandler is returned by SetUserCallback for a handler a
// callback client would refuse: a URL that is not https (or http to
// loopback), or a public key that does not parse or is of another kind
// than RSA or ECDSA P-256. Nothing is recorded.
var ErrBadCallbackHandler = errors.New("node: callback handler refused")

// UserCallbackRequest is the body of PUT /v1/cluster/callback/users/{user}:
// the handler's URL and its public key (PEM, as callback.handler_public_key
// holds it).
type UserCallbackRequest struct {
	URL          string `json:"url"`
	PublicKeyPEM string `json:"public_key_pem"`
}

// UserCallbackListing is an API user's own callback handler as the admin
// API shows it: the user's record id (WORKSPACE/USER), the URL and the
// SHA-256 of the handler's public key (PKIX DER).
type UserCallbackListing struct {
	User      string `json:"user"`
	URL       string `json:"url"`
	KeySHA256 string `json:"key_sha256"`
}

// userCallbackListings lists every user's own handler.
func userCallbackListings(hs []cluster.UserCallback) []UserCallbackListing {
	out := make([]UserCallbackListing, 0, len(hs))
	for _, h := range hs {
		out = append(out, UserCallbackListing{User: h.UserID, URL: h.URL, KeySHA256: fmt.Sprintf("%x", sha256.Sum256(h.HandlerKey))})
	}
	return out
}

// resolveUser returns the record id of the API user that name names:
// a record id (WORKSPACE/USER), or a user id that only one workspace has.
// Errors wrap cluster.ErrUnknownUser, or ErrRefused for an ambiguous id.
func (n *Node) resolveUser(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: no user named", cluster.ErrUnknownUser)
	}
	if _, ok := n.cluster.APIUser(name); ok {
		return name, nil
	}
	var found []string
	for _, r := range n.cluster.APIUsers() {
		if u, err := decodeUserInfo(r); err == nil && u.ID == name {
			found = append(found, r.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w: %q (`coterie node users` lists them)", cluster.ErrUnknownUser, name)
	case 1:
		return found[0], nil
	default:
		return "", fmt.Errorf("%w: user %q is paired in %d workspaces (%s): name one as WORKSPACE/USER",
			ErrRefused, name, len(found), strings.Join(found, ", "))
	}
}

// checkUserHandler checks a user's handler as this node's callback client
// would use it, with the node's settings, and returns its key as PKIX
// DER. Every problem is reported at once, wrapped in
// ErrBadCallbackHandler.
func (n *Node) checkUserHandler(url string, keyPEM []byte) ([]byte, error) {
	var errs []error
	if url == "" {
		errs = append(errs, errors.New("a handler URL is required"))
	} else if err := callback.CheckURL(url); err != nil {
		errs = append(errs, err)
	}
	key, err := callback.ParsePublicKeyPEM(keyPEM)
	if err != nil {
		errs = append(errs, fmt.Errorf("public key: %w", err))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrBadCallbackHandler, errors.Join(errs...))
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %w", ErrBadCallbackHandler, err)
	}
	cfg, err := n.callbackConfig()
	if err != nil {
		return nil, err
	}
	cfg.URL, cfg.HandlerKey = url, key
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCallbackHandler, err)
	}
	return der, nil
}

// SetUserCallback records user's own callback handler in the cluster: its
// requests are asked of it from then on, by every node. user is a record
// id (WORKSPACE/USER) or a user id only one workspace has. It returns the
// user's record id. Errors wrap cluster.ErrUnknownUser, ErrRefused (an
// ambiguous user id) or ErrBadCallbackHandler, and nothing is recorded.
func (n *Node) SetUserCallback(ctx context.Context, user, url string, keyPEM []byte) (string, error) {
	id, err := n.resolveUser(user)
	if err != nil {
		return "", err
	}
	der, err := n.checkUserHandler(url, keyPEM)
	if err != nil {
		return "", err
	}
	if err := n.cluster.SetUserCallback(ctx, id, url, der); err != nil {
		return "", err
	}
	n.log.Info("callback handler of a user recorded", "user", id, "handler", describeHandler(url, der))
	return id, nil
}

// ClearUserCallback removes user's own callback handler: its requests go
// to the cluster's handler again. Errors wrap cluster.ErrUnknownUser,
// ErrRefused (an ambiguous user id) or cluster.ErrNoUserCallback.
func (n *Node) ClearUserCallback(ctx context.Context, user string) (string, error) {
	id, err := n.resolveUser(user)
	if err != nil {
		return "", err
	}
	if err := n.cluster.ClearUserCallback(ctx, id); err != nil {
		return "", err
	}
	n.log.Info("callback handler of a user cleared", "user", id)
	return id, nil
}

func (a *adminServer) setUserCallback(w http.ResponseWriter, r *http.Request) {
	var req UserCallbackRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "the body is not a callback handler: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), clusterOpTimeout)
	defer cancel()
	if _, err := a.n.SetUserCallback(ctx, r.PathValue("user"), req.URL, []byte(req.PublicKeyPEM)); err != nil {
		a.userCallbackError(w, "set a user's callback handler", err)
		return
	}
	writeJSON(w, http.StatusOK, a.callbackListing())
}

func (a *adminServer) clearUserCallback(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), clusterOpTimeout)
	defer cancel()
	if _, err := a.n.ClearUserCallback(ctx, r.PathValue("user")); err != nil {
		a.userCallbackError(w, "clear a user's callback handler", err)
		return
	}
	writeJSON(w, http.StatusOK, a.callbackListing())
}

// userCallbackError answers the refusals of a user's handler change with
// codes the admin client maps back to their sentinels.
func (a *adminServer) userCallbackError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, cluster.ErrUnknownUser):
		writeError(w, http.StatusNotFound, codeUnknownUser, err.Error())
	case errors.Is(err, cluster.ErrNoUserCallback):
		writeError(w, http.StatusConflict, codeNoUserCallback, err.Error())
	case errors.Is(err, ErrBadCallbackHandler):
		writeError(w, http.StatusBadRequest, codeBadHandler, err.Error())
	default:
		a.clusterError(w, what, err)
	}
}
