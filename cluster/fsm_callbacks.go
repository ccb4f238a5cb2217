package cluster

import (
	"context"
	"maps"
	"slices"

	"github.com/coterie-mpc/coterie/protocol"
)

// An API user may have a callback handler of its own, recorded here
// beside the cluster's (state.callback): that user's requests are asked of
// it, every other user's of the cluster's. Because the record lives in the
// FSM, every node makes the same choice. A user's record always names a
// handler, a URL and a key: there is no per-user "none", so a user can
// never be approved automatically while the cluster has a handler (I5).
//
// The FSM checks the record's shape only. Whether the URL is https (or
// loopback http) and the key parses is checked by the node that proposes
// it, and again by every node's callback client before it asks.

// UserCallback is an API user's own callback handler.
type UserCallback struct {
	// UserID is the API user's record id.
	UserID string
	// URL is the handler's base URL.
	URL string
	// HandlerKey is the handler's public key, PKIX DER.
	HandlerKey []byte
}

// UserCallbackSetCommand returns a command recording user's own callback
// handler: its URL and public key (PKIX DER), both required.
func UserCallbackSetCommand(user, url string, handlerKey []byte) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_UserCallbackSet{UserCallbackSet: &protocol.ClusterUserCallbackSet{
		UserCallback: &protocol.ClusterUserCallback{
			UserId: user, Callback: &protocol.ClusterCallback{Url: url, HandlerKey: handlerKey},
		},
	}}}
}

// UserCallbackClearedCommand returns a command removing user's own
// callback handler, so that its requests go to the cluster's again.
func UserCallbackClearedCommand(user string) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_UserCallbackCleared{
		UserCallbackCleared: &protocol.ClusterUserCallbackCleared{UserId: user},
	}}
}

// validateUserCallback checks a user's handler record: a user id, and a
// handler with both a URL and a key.
func validateUserCallback(u *protocol.ClusterUserCallback) error {
	if err := checkID("api user", u.GetUserId()); err != nil {
		return err
	}
	c := u.GetCallback()
	if c.GetUrl() == "" || len(c.GetHandlerKey()) == 0 {
		return errorf(ErrBadCommand, "an API user's callback handler needs a URL and a key")
	}
	return validateCallback(c)
}

// checkUserCallbackChange refuses a handler change from a node that is
// not a member, once there is a member table; and one naming an API user
// the cluster does not know.
func (s *state) checkUserCallbackChange(node, user string) error {
	if s.clusterID != "" {
		if _, err := s.member(node); err != nil {
			return err
		}
	}
	if _, ok := s.users[user]; !ok {
		return errorf(ErrUnknownUser, "%q", user)
	}
	return nil
}

func (s *state) setUserCallback(node string, u *protocol.ClusterUserCallback) ([]Event, error) {
	if err := s.checkUserCallbackChange(node, u.GetUserId()); err != nil {
		return nil, err
	}
	c := u.GetCallback()
	s.userCallbacks[u.GetUserId()] = &protocol.ClusterCallback{Url: c.GetUrl(), HandlerKey: slices.Clone(c.GetHandlerKey())}
	return []Event{{Kind: EventUserCallbackSet, Node: node, APIUserID: u.GetUserId()}}, nil
}

func (s *state) clearUserCallback(node, user string) ([]Event, error) {
	if err := s.checkUserCallbackChange(node, user); err != nil {
		return nil, err
	}
	if _, ok := s.userCallbacks[user]; !ok {
		return nil, errorf(ErrNoUserCallback, "%q", user)
	}
	delete(s.userCallbacks, user)
	return []Event{{Kind: EventUserCallbackCleared, Node: node, APIUserID: user}}, nil
}

// encodeUserCallbacks lists the users' handlers sorted by user id.
func encodeUserCallbacks(st *state) []*protocol.ClusterUserCallback {
	var out []*protocol.ClusterUserCallback
	for _, id := range slices.Sorted(maps.Keys(st.userCallbacks)) {
		out = append(out, &protocol.ClusterUserCallback{UserId: id, Callback: st.userCallbacks[id]})
	}
	return out
}

// decodeUserCallbacks restores the users' handlers, checking them as the
// commands that recorded them would: st's API users must be restored.
func decodeUserCallbacks(st *state, in *protocol.ClusterState) error {
	for _, u := range in.GetUserCallbacks() {
		if err := validateUserCallback(u); err != nil {
			return err
		}
		if _, ok := st.users[u.GetUserId()]; !ok {
			return errorf(ErrBadCommand, "snapshot: callback handler of unknown API user %q", u.GetUserId())
		}
		if _, dup := st.userCallbacks[u.GetUserId()]; dup {
			return errorf(ErrBadCommand, "snapshot: callback handler of API user %q twice", u.GetUserId())
		}
		st.userCallbacks[u.GetUserId()] = u.GetCallback()
	}
	return nil
}

// UserCallback returns user's own callback handler, and false when it has
// none (its requests go to the cluster's handler).
func (f *FSM) UserCallback(user string) (UserCallback, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	c, ok := f.st.userCallbacks[user]
	if !ok {
		return UserCallback{}, false
	}
	return UserCallback{UserID: user, URL: c.GetUrl(), HandlerKey: slices.Clone(c.GetHandlerKey())}, true
}

// UserCallbacks returns every API user's own callback handler, sorted by
// user id.
func (f *FSM) UserCallbacks() []UserCallback {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]UserCallback, 0, len(f.st.userCallbacks))
	for _, id := range slices.Sorted(maps.Keys(f.st.userCallbacks)) {
		c := f.st.userCallbacks[id]
		out = append(out, UserCallback{UserID: id, URL: c.GetUrl(), HandlerKey: slices.Clone(c.GetHandlerKey())})
	}
	return out
}

// SetUserCallback records user's own callback handler through raft: its
// URL and public key (PKIX DER). Errors wrap ErrUnknownUser for a user the
// cluster does not know, and ErrBadCommand for a missing URL or key.
func (c *Cluster) SetUserCallback(ctx context.Context, user, url string, handlerKey []byte) error {
	_, err := c.Propose(ctx, UserCallbackSetCommand(user, url, handlerKey))
	return err
}

// ClearUserCallback removes user's own callback handler through raft.
// Errors wrap ErrUnknownUser, or ErrNoUserCallback when it has none.
func (c *Cluster) ClearUserCallback(ctx context.Context, user string) error {
	_, err := c.Propose(ctx, UserCallbackClearedCommand(user))
	return err
}
