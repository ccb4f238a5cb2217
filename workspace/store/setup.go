package store

import (
	"fmt"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/request"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// legacyRequestPrefix starts the request IDs of a store that has no setup:
// one created before workspaces had unique IDs, or one a test opens bare.
const legacyRequestPrefix = "r-"

// Setup returns the workspace's setup as InitSetup stored it; ok is false
// before that.
func (s *Store) Setup() (_ *protocol.WsSetup, ok bool, _ error) {
	var out *protocol.WsSetup
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, ok, err = get(tx.Bucket(bMeta), mSetup, &protocol.WsSetup{})
		return err
	})
	return out, ok, err
}

// InitSetup stores the workspace's setup unless one is stored already, and
// returns the stored one: the setup is written once, at the first start.
// The setup's request ID prefix must be "r-" or "r-" followed by an ID and
// a dash, so that every request ID stays a valid ID.
func (s *Store) InitSetup(setup *protocol.WsSetup) (*protocol.WsSetup, error) {
	if err := validSetup(setup); err != nil {
		return nil, err
	}
	setup = proto.Clone(setup).(*protocol.WsSetup)
	var out *protocol.WsSetup
	err := s.update(func(t *txn) error {
		meta := t.tx.Bucket(bMeta)
		stored, ok, err := get(meta, mSetup, &protocol.WsSetup{})
		if err != nil || ok {
			out = stored
			return err
		}
		setup.CreatedAt = t.nanos()
		if err := put(meta, mSetup, setup); err != nil {
			return err
		}
		out = setup
		return t.audit(ActorSystem, "workspace.setup", "", "", fmt.Sprintf("workspace=%s cloud_cosigners=%d quorum=%d",
			setup.GetWorkspaceId(), setup.GetCloudCosigners(), setup.GetQuorum()))
	})
	return out, err
}

func validSetup(s *protocol.WsSetup) error {
	var p []string
	if !request.ValidID(s.GetWorkspaceId()) {
		p = append(p, fmt.Sprintf("workspace ID %q is malformed", s.GetWorkspaceId()))
	}
	if prefix := s.GetRequestIdPrefix(); prefix != legacyRequestPrefix && !request.ValidID(prefix+"0") {
		p = append(p, fmt.Sprintf("request ID prefix %q is malformed", prefix))
	}
	if s.GetCloudCosigners() < 1 || s.GetQuorum() < 2 {
		p = append(p, "the setup names no cloud co-signer or quorum")
	}
	if len(p) > 0 {
		return fmt.Errorf("%w: %v", request.ErrInvalid, p)
	}
	return nil
}

// requestPrefix returns the prefix of this store's request IDs.
func requestPrefix(tx *bolt.Tx) (string, error) {
	setup, ok, err := get(tx.Bucket(bMeta), mSetup, &protocol.WsSetup{})
	if err != nil || !ok {
		return legacyRequestPrefix, err
	}
	return setup.GetRequestIdPrefix(), nil
}
