package cluster

import "sync"

// EventKind says what an applied command changed.
type EventKind int

// The event kinds.
const (
	EventClaimed EventKind = iota + 1
	EventReserved
	EventCompleted
	// EventReleased is sent once per request that a Release returned to
	// unclaimed; any node may now claim it.
	EventReleased
	EventPresignaturesAdded
	EventAPIUserAdded
	EventKeyRecordAdded
	// EventRestored says the state was replaced by a snapshot; a subscriber
	// should read the state again instead of relying on past events.
	EventRestored
	// EventInitialized: the member table started (Node bootstrapped it).
	EventInitialized
	// EventMemberAdded and EventMemberRemoved name the member in Node.
	EventMemberAdded
	EventMemberRemoved
	// EventPolicySet: the attestation policy changed.
	EventPolicySet
	// EventJoinTokenIssued: a member (Node) issued a join token.
	EventJoinTokenIssued
	// EventCallbackSet: the cluster's callback handler was recorded.
	EventCallbackSet
	// EventKeyringRotated: a member (Node) rotated the keyring to
	// KeyVersion; EventKeyringAdopted: member Node holds KeyVersion sealed.
	EventKeyringRotated
	EventKeyringAdopted
	// EventRecordsResealed: Count sealed parts moved to a newer version.
	EventRecordsResealed
	// EventUserCallbackSet: an API user's own callback handler was
	// recorded or replaced (APIUserID names the user record).
	EventUserCallbackSet
	// EventUserCallbackCleared: an API user's own callback handler was
	// removed (APIUserID names the user record).
	EventUserCallbackCleared
	// EventKeyringExported: member Node handed out the keyring encrypted
	// to Count recovery keys.
	EventKeyringExported
	// EventKeyRefreshed: a refresh replaced the share in key record
	// KeyID and burned Count live presignatures of it.
	EventKeyRefreshed
	// EventDecided: the callback handler's decision about RequestID was
	// recorded (by a Reserve that carried it, or a Decide).
	EventDecided
	// EventAuditTruncated: the audit log entries up to Count were
	// dropped, after Node exported them.
	EventAuditTruncated
)

// String returns the kind's lowercase name.
func (k EventKind) String() string {
	switch k {
	case EventClaimed:
		return "claimed"
	case EventReserved:
		return "reserved"
	case EventCompleted:
		return "completed"
	case EventReleased:
		return "released"
	case EventPresignaturesAdded:
		return "presignatures-added"
	case EventAPIUserAdded:
		return "api-user-added"
	case EventKeyRecordAdded:
		return "key-record-added"
	case EventRestored:
		return "restored"
	case EventInitialized:
		return "initialized"
	case EventMemberAdded:
		return "member-added"
	case EventMemberRemoved:
		return "member-removed"
	case EventPolicySet:
		return "policy-set"
	case EventJoinTokenIssued:
		return "join-token-issued"
	case EventCallbackSet:
		return "callback-set"
	case EventKeyringRotated:
		return "keyring-rotated"
	case EventKeyringAdopted:
		return "keyring-adopted"
	case EventRecordsResealed:
		return "records-resealed"
	case EventUserCallbackSet:
		return "user-callback-set"
	case EventUserCallbackCleared:
		return "user-callback-cleared"
	case EventKeyRefreshed:
		return "key-refreshed"
	case EventKeyringExported:
		return "keyring-exported"
	case EventDecided:
		return "decided"
	case EventAuditTruncated:
		return "audit-truncated"
	default:
		return "unknown"
	}
}

// Event describes one change applied to the local FSM. Fields that do not
// apply to the kind are empty.
type Event struct {
	Kind EventKind
	// Index is the raft index of the command that caused the event.
	Index        uint64
	RequestID    string
	APIUserID    string
	Node         string
	Presignature PresignatureRef
	Outcome      Outcome
	KeyID        string
	// Count is the number of presignatures added.
	Count    int
	RecordID string
	// KeyVersion is the keyring version rotated in or adopted.
	KeyVersion uint32
	// Burned is the number of presignatures a release burned for the
	// request.
	Burned int
}

// subscribers fans events out to channels without ever blocking Apply.
type subscribers struct {
	mu   sync.Mutex
	next int
	chs  map[int]chan Event
}

// publish sends evs to every subscriber whose buffer has room; a full
// subscriber misses the event.
func (s *subscribers) publish(evs []Event) {
	if len(evs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.chs {
		for _, ev := range evs {
			select {
			case ch <- ev:
			default:
			}
		}
	}
}

// Subscribe returns a channel of the events the local FSM applies from now
// on, and a function that ends the subscription and closes the channel.
//
// Apply never waits for a subscriber: when the buffer is full, events are
// dropped. Events are hints; the state read through the query methods is
// the truth, and a subscriber that may have missed events (or sees
// EventRestored) should read it again. Each node sees every event once its
// replica applies the command, so a follower's events lag the leader's.
func (f *FSM) Subscribe(buffer int) (<-chan Event, func()) {
	ch := make(chan Event, max(buffer, 1))
	s := &f.subs
	s.mu.Lock()
	if s.chs == nil {
		s.chs = map[int]chan Event{}
	}
	id := s.next
	s.next++
	s.chs[id] = ch
	s.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.chs, id)
			s.mu.Unlock()
			close(ch)
		})
	}
}
