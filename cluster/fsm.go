package cluster

import (
	"io"
	"slices"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/cluster/audit"
	"github.com/coterie-mpc/coterie/protocol"
)

// Retention limits. Like the command limits, they are constants because
// every replica must apply the same rules.
const (
	// completedRetained is how many completed requests the FSM remembers.
	// Beyond it the oldest completion is forgotten, and a Claim of that
	// request id would start it afresh.
	completedRetained = 16384
	// spentRetained is how many used or burned presignatures the FSM
	// remembers per key, so that reserving one of them again names the
	// reason (ErrPresignatureUsed or ErrPresignatureBurned) instead of
	// ErrUnknownPresignature. Safety does not rest on it: a spent
	// presignature is never available again, and the high-water marks
	// refuse any Add that was applied before (see keyPool).
	spentRetained = 4096
)

// FSM is the deterministic state machine behind the raft log: request
// ownership, presignature pools, API users and key records. It holds
// ciphertext only.
//
// Apply, Snapshot and Restore are called by raft from one goroutine. The
// query methods may be called concurrently with them and with each other;
// they read the state under a read lock and return copies the caller owns.
// Reads see the local replica, which may lag the leader (see doc.go).
type FSM struct {
	mu sync.RWMutex
	st *state
	// applied is closed and replaced after each Apply and Restore, so that
	// waiters learn the applied index moved.
	applied chan struct{}
	subs    subscribers
	// onRotation, set by New before raft starts, runs on raft's apply
	// goroutine, outside the lock, after each Apply that rotated the
	// keyring and after each Restore (see Cluster.takeInCopies).
	onRotation func()
}

var _ raft.FSM = (*FSM)(nil)

// state is the FSM's data. Every method that changes it is deterministic:
// its effect depends only on the state and the command.
type state struct {
	requests map[string]*protocol.ClusterRequestState
	// completed holds the ids of completed requests, oldest first.
	completed     []string
	completionSeq uint64
	pools         map[string]*keyPool
	users         map[string]*protocol.ClusterRecord
	keys          map[string]*protocol.ClusterRecord
	appliedIndex  uint64

	// The member table: empty until Init.
	clusterID string
	policy    *protocol.ClusterPolicy
	members   map[string]*protocol.ClusterMember
	tokens    map[string]*protocol.ClusterJoinToken
	// callback is the cluster's callback handler, nil until recorded.
	callback *protocol.ClusterCallback

	// rotations are the keyring rotations some member has yet to adopt,
	// and the latest, by version; adopted is each member's highest adopted
	// version (see fsm_keyring.go).
	rotations []*protocol.ClusterKeyringVersion
	adopted   map[string]uint32
	// userCallbacks holds the API users' own callback handlers, by user
	// record id (see fsm_callbacks.go).
	userCallbacks map[string]*protocol.ClusterCallback
	// audit is the retained audit log (see fsm_audit.go).
	audit audit.Chain
}

func newState() *state {
	return &state{
		requests:      map[string]*protocol.ClusterRequestState{},
		pools:         map[string]*keyPool{},
		users:         map[string]*protocol.ClusterRecord{},
		keys:          map[string]*protocol.ClusterRecord{},
		members:       map[string]*protocol.ClusterMember{},
		tokens:        map[string]*protocol.ClusterJoinToken{},
		adopted:       map[string]uint32{},
		userCallbacks: map[string]*protocol.ClusterCallback{},
	}
}

// NewFSM returns an empty FSM.
func NewFSM() *FSM {
	return &FSM{st: newState(), applied: make(chan struct{})}
}

// Apply applies one committed log entry. It returns nil or an error (one of
// the package's sentinels, wrapped) as the entry's response; it never
// panics on a malformed entry.
func (f *FSM) Apply(l *raft.Log) any {
	cmd, err := DecodeCommand(l.Data)
	f.mu.Lock()
	var evs []Event
	if err == nil {
		evs, err = f.st.apply(cmd)
	}
	if err == nil {
		f.st.recordAudit(l.Index, cmd, evs)
	}
	if l.Index > f.st.appliedIndex {
		f.st.appliedIndex = l.Index
	}
	for i := range evs {
		evs[i].Index = l.Index
	}
	f.subs.publish(evs)
	close(f.applied)
	f.applied = make(chan struct{})
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if f.onRotation != nil && slices.ContainsFunc(evs, func(ev Event) bool { return ev.Kind == EventKeyringRotated }) {
		f.onRotation()
	}
	return nil
}

// apply dispatches a validated command.
func (s *state) apply(cmd *protocol.ClusterCommand) ([]Event, error) {
	node, at := cmd.GetNode(), cmd.GetProposedAtUnixNano()
	switch b := cmd.GetBody().(type) {
	case *protocol.ClusterCommand_Claim:
		return s.claim(node, at, b.Claim)
	case *protocol.ClusterCommand_Reserve:
		return s.reserve(node, b.Reserve)
	case *protocol.ClusterCommand_Complete:
		return s.complete(node, at, b.Complete)
	case *protocol.ClusterCommand_Release:
		if u := b.Release.GetApiUserId(); u != "" && b.Release.GetNode() != node {
			// A hand-back is a node's own: only the leader's owner watch
			// releases another node, and it releases all of it.
			return nil, errorf(ErrBadCommand, "node %q cannot hand back node %q's requests of %q", node, b.Release.GetNode(), u)
		}
		return s.release(b.Release.GetNode(), b.Release.GetApiUserId()), nil
	case *protocol.ClusterCommand_PresignaturesAdded:
		return s.addPresignatures(node, b.PresignaturesAdded)
	case *protocol.ClusterCommand_ApiUserAdded:
		return s.addRecord(s.users, EventAPIUserAdded, at, b.ApiUserAdded.GetUser())
	case *protocol.ClusterCommand_KeyRecordAdded:
		return s.addRecord(s.keys, EventKeyRecordAdded, at, b.KeyRecordAdded.GetKey())
	case *protocol.ClusterCommand_KeyringExported:
		if s.clusterID != "" {
			if _, err := s.member(node); err != nil {
				return nil, err
			}
		}
		return []Event{{Kind: EventKeyringExported, Node: node, Count: len(b.KeyringExported.GetRecipients())}}, nil
	case *protocol.ClusterCommand_KeyRefreshed:
		if s.clusterID != "" {
			if _, err := s.member(node); err != nil {
				return nil, err
			}
		}
		return s.refreshKey(at, b.KeyRefreshed)
	case *protocol.ClusterCommand_Sync:
		return nil, nil
	case *protocol.ClusterCommand_CallbackSet:
		if s.clusterID != "" {
			if _, err := s.member(node); err != nil {
				return nil, err
			}
		}
		c := b.CallbackSet.GetCallback()
		s.callback = &protocol.ClusterCallback{Url: c.GetUrl(), HandlerKey: slices.Clone(c.GetHandlerKey())}
		return []Event{{Kind: EventCallbackSet, Node: node}}, nil
	case *protocol.ClusterCommand_UserCallbackSet:
		return s.setUserCallback(node, b.UserCallbackSet.GetUserCallback())
	case *protocol.ClusterCommand_UserCallbackCleared:
		return s.clearUserCallback(node, b.UserCallbackCleared.GetUserId())
	case *protocol.ClusterCommand_Confirm:
		_, err := s.owned(node, b.Confirm.GetRequestId())
		return nil, err
	case *protocol.ClusterCommand_Init:
		return s.init(node, at, b.Init)
	case *protocol.ClusterCommand_MemberAdded:
		return s.addMember(node, at, b.MemberAdded)
	case *protocol.ClusterCommand_MemberRemoved:
		return s.removeMember(node, b.MemberRemoved)
	case *protocol.ClusterCommand_PolicySet:
		return s.setPolicy(node, b.PolicySet)
	case *protocol.ClusterCommand_JoinTokenIssued:
		return s.issueToken(node, at, b.JoinTokenIssued)
	case *protocol.ClusterCommand_KeyringRotated:
		return s.rotateKeyring(node, at, b.KeyringRotated)
	case *protocol.ClusterCommand_KeyringAdopted:
		return s.adoptKeyring(node, b.KeyringAdopted)
	case *protocol.ClusterCommand_RecordsResealed:
		return s.resealRecords(node, b.RecordsResealed)
	case *protocol.ClusterCommand_AuditTruncate:
		return s.truncateAudit(node, b.AuditTruncate)
	case *protocol.ClusterCommand_Decide:
		return s.decideCommand(node, b.Decide)
	default:
		// validateCommand already refused a missing body.
		return nil, errorf(ErrBadCommand, "no body")
	}
}

func (s *state) addRecord(m map[string]*protocol.ClusterRecord, kind EventKind, at int64, r *protocol.ClusterRecord) ([]Event, error) {
	if _, ok := m[r.GetId()]; ok {
		return nil, errorf(ErrRecordExists, "%q", r.GetId())
	}
	m[r.GetId()] = &protocol.ClusterRecord{
		Id:              r.GetId(),
		OwnerId:         r.GetOwnerId(),
		Public:          slices.Clone(r.GetPublic()),
		Sealed:          slices.Clone(r.GetSealed()),
		AddedAtUnixNano: at,
		Epoch:           slices.Clone(r.GetEpoch()),
	}
	return []Event{{Kind: kind, RecordID: r.GetId()}}, nil
}

// Snapshot captures the state for raft. The encoding happens here, under
// the lock, so Persist can run concurrently with later Applies.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	b, err := encodeState(f.st)
	f.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{data: b}, nil
}

// Restore replaces the state with a snapshot. A snapshot that does not
// decode, or breaks the FSM's own invariants, is refused with an error and
// the current state is kept.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxSnapshotBytes+1))
	if err != nil {
		return err
	}
	if len(b) > maxSnapshotBytes {
		return errorf(ErrTooLarge, "snapshot larger than %d bytes", maxSnapshotBytes)
	}
	st, err := decodeState(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.st = st
	f.subs.publish([]Event{{Kind: EventRestored, Index: st.appliedIndex}})
	close(f.applied)
	f.applied = make(chan struct{})
	f.mu.Unlock()
	if f.onRotation != nil {
		f.onRotation()
	}
	return nil
}

// EncodeState returns the canonical encoding of the current state: the same
// bytes a snapshot holds. Two replicas that applied the same log return the
// same bytes.
func (f *FSM) EncodeState() ([]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return encodeState(f.st)
}

// EncodeStateAt is EncodeState with the applied index the state reflects,
// read under the same lock.
func (f *FSM) EncodeStateAt() ([]byte, uint64, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := encodeState(f.st)
	return b, f.st.appliedIndex, err
}

// fsmSnapshot is an encoded state waiting to be written.
type fsmSnapshot struct{ data []byte }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
