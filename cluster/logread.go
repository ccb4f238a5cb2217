package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/protocol"
)

// MaxLogEntries bounds the entries one LogEntries call returns.
const MaxLogEntries = 1000

// The types of a raft log entry, as LogEntry.Type names them.
const (
	LogTypeCommand       = "command"
	LogTypeNoop          = "noop"
	LogTypeConfiguration = "configuration"
	LogTypeBarrier       = "barrier"
	LogTypeOther         = "other"
)

// The kinds of a command entry, as LogEntry.Kind names them: the body of
// the ClusterCommand, by its protobuf field name.
const (
	KindClaim               = "claim"
	KindReserve             = "reserve"
	KindComplete            = "complete"
	KindRelease             = "release"
	KindPresignaturesAdded  = "presignatures_added"
	KindAPIUserAdded        = "api_user_added"
	KindKeyRecordAdded      = "key_record_added"
	KindInit                = "init"
	KindMemberAdded         = "member_added"
	KindMemberRemoved       = "member_removed"
	KindPolicySet           = "policy_set"
	KindJoinTokenIssued     = "join_token_issued"
	KindConfirm             = "confirm"
	KindSync                = "sync"
	KindCallbackSet         = "callback_set"
	KindKeyringRotated      = "keyring_rotated"
	KindKeyringAdopted      = "keyring_adopted"
	KindRecordsResealed     = "records_resealed"
	KindUserCallbackSet     = "user_callback_set"
	KindUserCallbackCleared = "user_callback_cleared"
	KindKeyRefreshed        = "key_refreshed"
	KindKeyringExported     = "keyring_exported"
	KindAuditTruncate       = "audit_truncate"
	KindDecide              = "decide"
	// KindInvalid is a command entry that does not decode or validate:
	// Apply refused it, and it changed nothing.
	KindInvalid = "invalid"
)

// LogEntry is one committed raft log entry as an outside checker may see
// it. It holds no secret: it names what a command did to requests and
// presignatures and leaves out every sealed share, record, join token hash,
// keyring and callback key; a command that carries those is named by its
// kind only.
type LogEntry struct {
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
	// Type is one of the LogType constants.
	Type string `json:"type"`
	// Kind, Node and ProposedAt are a command's: its body's kind (a Kind
	// constant), its proposer and its proposer's timestamp.
	Kind       string    `json:"kind,omitempty"`
	Node       string    `json:"node,omitempty"`
	ProposedAt time.Time `json:"proposed_at,omitzero"`
	// RequestID is the request a claim, reserve, complete or confirm
	// names, or the request a presignatures_added reserves for; APIUserID
	// is a claim's API user, or the one a release is narrowed to.
	RequestID string `json:"request_id,omitempty"`
	APIUserID string `json:"api_user_id,omitempty"`
	// KeyID and Presignatures are a reserve's or a presignatures_added's
	// key and presignature ids (KeyID also a key_refreshed's key). A reserve with no id lets the FSM pick the
	// key's oldest available presignature.
	KeyID         string   `json:"key_id,omitempty"`
	Presignatures []string `json:"presignatures,omitempty"`
	// ReleasedNode is the node a release returns the requests of.
	ReleasedNode string `json:"released_node,omitempty"`
	// Outcome is a complete's outcome (an Outcome's String).
	Outcome string `json:"outcome,omitempty"`
}

// LogEntries returns the committed entries of this node's raft log after
// index after, at most limit of them (MaxLogEntries when limit is not in
// 1..MaxLogEntries), and whether more follow. Only entries the local FSM
// has applied are returned; entries compacted into a snapshot are skipped,
// and first is the lowest index the log still holds (0 when it holds none
// yet). Safe for concurrent use.
func (c *Cluster) LogEntries(after uint64, limit int) (entries []LogEntry, first uint64, more bool, err error) {
	return readLog(c.logs, c.fsm.AppliedIndex(), after, limit)
}

// readLog reads the entries of logs after index after, up to index upTo.
func readLog(logs raft.LogStore, upTo, after uint64, limit int) ([]LogEntry, uint64, bool, error) {
	if limit < 1 || limit > MaxLogEntries {
		limit = MaxLogEntries
	}
	first, err := logs.FirstIndex()
	if err != nil {
		return nil, 0, false, fmt.Errorf("cluster: read the log's first index: %w", err)
	}
	last, err := logs.LastIndex()
	if err != nil {
		return nil, 0, false, fmt.Errorf("cluster: read the log's last index: %w", err)
	}
	upTo = min(upTo, last)
	from := max(after+1, first)
	out := []LogEntry{}
	var l raft.Log
	i := from
	for ; i <= upTo && len(out) < limit; i++ {
		if err := logs.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				// Compacted while we read: what is left starts later.
				continue
			}
			return nil, 0, false, fmt.Errorf("cluster: read log entry %d: %w", i, err)
		}
		out = append(out, logEntry(&l))
	}
	return out, first, i <= upTo, nil
}

// logEntry describes l without its secrets.
func logEntry(l *raft.Log) LogEntry {
	e := LogEntry{Index: l.Index, Term: l.Term}
	switch l.Type {
	case raft.LogCommand:
		e.Type = LogTypeCommand
	case raft.LogNoop:
		e.Type = LogTypeNoop
	case raft.LogConfiguration, raft.LogAddPeerDeprecated, raft.LogRemovePeerDeprecated:
		e.Type = LogTypeConfiguration
	case raft.LogBarrier:
		e.Type = LogTypeBarrier
	default:
		e.Type = LogTypeOther
	}
	if l.Type != raft.LogCommand {
		return e
	}
	cmd, err := DecodeCommand(l.Data)
	if err != nil {
		e.Kind = KindInvalid
		return e
	}
	e.Node = cmd.GetNode()
	e.ProposedAt = time.Unix(0, cmd.GetProposedAtUnixNano()).UTC()
	describeCommand(&e, cmd)
	return e
}

// describeCommand fills in e's kind and the non-secret fields of cmd's body.
func describeCommand(e *LogEntry, cmd *protocol.ClusterCommand) {
	switch b := cmd.GetBody().(type) {
	case *protocol.ClusterCommand_Claim:
		e.Kind, e.RequestID, e.APIUserID = KindClaim, b.Claim.GetRequestId(), b.Claim.GetApiUserId()
	case *protocol.ClusterCommand_Reserve:
		e.Kind, e.RequestID, e.KeyID = KindReserve, b.Reserve.GetRequestId(), b.Reserve.GetKeyId()
		if id := b.Reserve.GetPresignatureId(); id != "" {
			e.Presignatures = []string{id}
		}
	case *protocol.ClusterCommand_Complete:
		e.Kind, e.RequestID = KindComplete, b.Complete.GetRequestId()
		e.Outcome = outcomeFromProto(b.Complete.GetOutcome()).String()
	case *protocol.ClusterCommand_Release:
		e.Kind, e.ReleasedNode, e.APIUserID = KindRelease, b.Release.GetNode(), b.Release.GetApiUserId()
	case *protocol.ClusterCommand_PresignaturesAdded:
		a := b.PresignaturesAdded
		e.Kind, e.RequestID, e.KeyID = KindPresignaturesAdded, a.GetReserveFor(), a.GetKeyId()
		for _, p := range a.GetPresignatures() {
			e.Presignatures = append(e.Presignatures, p.GetId())
		}
	case *protocol.ClusterCommand_Confirm:
		e.Kind, e.RequestID = KindConfirm, b.Confirm.GetRequestId()
	case *protocol.ClusterCommand_ApiUserAdded:
		e.Kind = KindAPIUserAdded
	case *protocol.ClusterCommand_KeyRecordAdded:
		e.Kind = KindKeyRecordAdded
	case *protocol.ClusterCommand_Init:
		e.Kind = KindInit
	case *protocol.ClusterCommand_MemberAdded:
		e.Kind = KindMemberAdded
	case *protocol.ClusterCommand_MemberRemoved:
		e.Kind = KindMemberRemoved
	case *protocol.ClusterCommand_PolicySet:
		e.Kind = KindPolicySet
	case *protocol.ClusterCommand_JoinTokenIssued:
		e.Kind = KindJoinTokenIssued
	case *protocol.ClusterCommand_Sync:
		e.Kind = KindSync
	case *protocol.ClusterCommand_CallbackSet:
		e.Kind = KindCallbackSet
	case *protocol.ClusterCommand_KeyringRotated:
		e.Kind = KindKeyringRotated
	case *protocol.ClusterCommand_KeyringAdopted:
		e.Kind = KindKeyringAdopted
	case *protocol.ClusterCommand_RecordsResealed:
		e.Kind = KindRecordsResealed
	case *protocol.ClusterCommand_UserCallbackSet:
		e.Kind = KindUserCallbackSet
	case *protocol.ClusterCommand_UserCallbackCleared:
		e.Kind = KindUserCallbackCleared
	case *protocol.ClusterCommand_KeyringExported:
		e.Kind = KindKeyringExported
	case *protocol.ClusterCommand_KeyRefreshed:
		e.Kind, e.KeyID = KindKeyRefreshed, b.KeyRefreshed.GetKeyId()
	case *protocol.ClusterCommand_AuditTruncate:
		e.Kind = KindAuditTruncate
	case *protocol.ClusterCommand_Decide:
		e.Kind, e.RequestID = KindDecide, b.Decide.GetRequestId()
	default:
		// DecodeCommand refuses a command with no body.
		e.Kind = KindInvalid
	}
}
