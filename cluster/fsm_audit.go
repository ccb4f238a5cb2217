package cluster

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/coterie-mpc/coterie/cluster/audit"
	"github.com/coterie-mpc/coterie/protocol"
)

// The audit log (package cluster/audit) is built here, inside the FSM: each
// applied command that changes a request, a presignature's owner, the
// member table, the policy, the keyring, a pairing or a callback handler
// appends entries derived from the events it produced, stamped with the
// command's raft index and its proposer's timestamp. So every replica
// derives the same chain from the same log, and a snapshot carries the
// retained entries and their anchor so that a restored replica continues
// it. Pool refills (PresignaturesAdded without a reservation), Confirm and
// Sync record nothing.
//
// Retention: an AuditTruncate, proposed by a node after it exported the
// oldest entries to a file, drops them; the chain keeps the anchor (the
// last dropped entry's number and hash) and records the truncation as an
// entry of its own. Beyond auditHardCap retained entries the FSM drops the
// oldest by itself, so memory and snapshots stay bounded even when no node
// exports; those entries are lost, and the chain still verifies from its
// anchor.

// auditHardCap bounds the retained audit entries, whatever the nodes'
// retention settings. A constant, like every FSM limit.
const auditHardCap = 100_000

// Bounds on a decision's fields.
const (
	maxActionLen     = 16
	maxHandlerKeyLen = 128
	maxDigestLen     = 64
	maxDetailLen     = 512
)

// AuditTruncateCommand returns a command dropping the audit entries up to
// upTo, whose hash must be hash.
func AuditTruncateCommand(upTo uint64, hash audit.Digest) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_AuditTruncate{AuditTruncate: &protocol.ClusterAuditTruncate{
		UpTo: upTo, Hash: hash[:],
	}}}
}

// Decision is the callback handler's answer about a request, as the
// cluster records it. It holds no secret.
type Decision struct {
	// Action is APPROVE, REJECT or IGNORE.
	Action string
	Reason string
	// HandlerKey is the id of the key that verified the answer
	// (audit.KeyID), or audit.AutoKeyID.
	HandlerKey string
	// ContentDigest is the SHA-256 of what the handler was asked about.
	ContentDigest []byte
	// Detail describes what the request asks (amounts, destinations).
	Detail string
}

func (d *Decision) proto() *protocol.ClusterDecision {
	if d == nil {
		return nil
	}
	return &protocol.ClusterDecision{
		Action: d.Action, Reason: d.Reason, HandlerKey: d.HandlerKey, ContentDigest: d.ContentDigest, Detail: d.Detail,
	}
}

func decisionFromProto(p *protocol.ClusterDecision) (Decision, bool) {
	if p == nil {
		return Decision{}, false
	}
	return Decision{
		Action: p.GetAction(), Reason: p.GetReason(), HandlerKey: p.GetHandlerKey(),
		ContentDigest: append([]byte(nil), p.GetContentDigest()...), Detail: p.GetDetail(),
	}, true
}

// DecideCommand returns a command recording the handler's decision about
// request, which the proposer must own.
func DecideCommand(request string, d Decision) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_Decide{Decide: &protocol.ClusterDecide{
		RequestId: request, Decision: d.proto(),
	}}}
}

// validateDecision bounds a decision's fields; nil is allowed where the
// decision is optional.
func validateDecision(d *protocol.ClusterDecision, required bool) error {
	if d == nil {
		if required {
			return errorf(ErrBadCommand, "missing decision")
		}
		return nil
	}
	switch {
	case d.GetAction() == "" || len(d.GetAction()) > maxActionLen:
		return errorf(ErrBadCommand, "decision action must have 1 to %d bytes", maxActionLen)
	case len(d.GetReason()) > maxReasonLen:
		return errorf(ErrBadCommand, "decision reason longer than %d bytes", maxReasonLen)
	case len(d.GetHandlerKey()) > maxHandlerKeyLen:
		return errorf(ErrBadCommand, "decision handler key id longer than %d bytes", maxHandlerKeyLen)
	case len(d.GetContentDigest()) > maxDigestLen:
		return errorf(ErrBadCommand, "decision digest longer than %d bytes", maxDigestLen)
	case len(d.GetDetail()) > maxDetailLen:
		return errorf(ErrBadCommand, "decision detail longer than %d bytes", maxDetailLen)
	}
	return nil
}

// decide records d as the decision about r, and returns its event.
func (s *state) decide(node string, r *protocol.ClusterRequestState, d *protocol.ClusterDecision) Event {
	r.Decision = &protocol.ClusterDecision{
		Action: d.GetAction(), Reason: d.GetReason(), HandlerKey: d.GetHandlerKey(),
		ContentDigest: append([]byte(nil), d.GetContentDigest()...), Detail: d.GetDetail(),
	}
	return Event{Kind: EventDecided, RequestID: r.GetId(), APIUserID: r.GetApiUserId(), Node: node}
}

// decideCommand applies a Decide.
func (s *state) decideCommand(node string, c *protocol.ClusterDecide) ([]Event, error) {
	r, err := s.owned(node, c.GetRequestId())
	if err != nil {
		return nil, err
	}
	return []Event{s.decide(node, r, c.GetDecision())}, nil
}

// truncateAudit applies an AuditTruncate.
func (s *state) truncateAudit(node string, c *protocol.ClusterAuditTruncate) ([]Event, error) {
	if s.clusterID != "" {
		if _, err := s.member(node); err != nil {
			return nil, err
		}
	}
	var h audit.Digest
	copy(h[:], c.GetHash())
	if err := s.audit.Truncate(c.GetUpTo(), h); err != nil {
		return nil, errorf(ErrAudit, "%v", err)
	}
	return []Event{{Kind: EventAuditTruncated, Node: node, Count: int(c.GetUpTo())}}, nil
}

// recordAudit appends the audit entries of one applied command.
func (s *state) recordAudit(index uint64, cmd *protocol.ClusterCommand, evs []Event) {
	base := audit.Entry{Index: index, Time: time.Unix(0, cmd.GetProposedAtUnixNano()).UTC(), Node: cmd.GetNode()}
	for _, ev := range evs {
		e := base
		e.Request, e.APIUser = ev.RequestID, ev.APIUserID
		switch ev.Kind {
		case EventClaimed:
			e.Kind = audit.KindClaimed
			e.Number = uint64(s.requests[ev.RequestID].GetAttempt())
		case EventDecided:
			e.Kind = audit.KindDecided
			d := s.requests[ev.RequestID].GetDecision()
			e.Action, e.Reason, e.HandlerKey, e.Detail = d.GetAction(), d.GetReason(), d.GetHandlerKey(), d.GetDetail()
			e.Digest = hex.EncodeToString(d.GetContentDigest())
		case EventReserved:
			e.Kind = audit.KindReserved
			e.Key, e.Presignature = ev.Presignature.KeyID, ev.Presignature.ID
		case EventCompleted:
			e.Kind = audit.KindCompleted
			e.Outcome = ev.Outcome.String()
			e.Reason = cmd.GetComplete().GetReason()
		case EventReleased:
			e.Kind = audit.KindReleased
			e.Subject = ev.Node
			e.Number = uint64(ev.Burned)
		case EventAPIUserAdded:
			e.Kind = audit.KindAPIUserAdded
			e.Subject = ev.RecordID
		case EventKeyRecordAdded:
			e.Kind = audit.KindKeyRecordAdded
			e.Subject = ev.RecordID
			e.APIUser = s.keys[ev.RecordID].GetOwnerId()
		case EventInitialized:
			e.Kind = audit.KindInitialized
			e.Subject = s.clusterID
		case EventMemberAdded:
			e.Kind = audit.KindMemberAdded
			e.Subject = ev.Node
			m := s.members[ev.Node]
			e.Detail = fmt.Sprintf("address=%s location=%s enclave=%s", m.GetAddress(), m.GetLocation(), m.GetEnclave().GetKind())
		case EventMemberRemoved:
			e.Kind = audit.KindMemberRemoved
			e.Subject = ev.Node
		case EventPolicySet:
			e.Kind = audit.KindPolicySet
			e.Number = uint64(len(s.policy.GetAllow()))
		case EventJoinTokenIssued:
			e.Kind = audit.KindJoinTokenIssued
			t := cmd.GetJoinTokenIssued()
			e.Subject = t.GetId()
			e.Detail = "expires=" + time.Unix(0, t.GetExpiresAtUnixNano()).UTC().Format(time.RFC3339)
		case EventCallbackSet:
			e.Kind = audit.KindCallbackSet
			e.Detail, e.HandlerKey = s.callback.GetUrl(), audit.KeyID(s.callback.GetHandlerKey())
		case EventUserCallbackSet:
			e.Kind = audit.KindUserCallbackSet
			c := s.userCallbacks[ev.APIUserID]
			e.Detail, e.HandlerKey = c.GetUrl(), audit.KeyID(c.GetHandlerKey())
		case EventUserCallbackCleared:
			e.Kind = audit.KindUserCallbackCleared
		case EventKeyringRotated:
			e.Kind = audit.KindKeyringRotated
			e.Number = uint64(ev.KeyVersion)
		case EventKeyringAdopted:
			e.Kind = audit.KindKeyringAdopted
			e.Number = uint64(ev.KeyVersion)
		case EventRecordsResealed:
			e.Kind = audit.KindRecordsResealed
			e.Number = uint64(ev.Count)
		case EventKeyringExported:
			e.Kind = audit.KindKeyringExported
			x := cmd.GetKeyringExported()
			e.Number = uint64(len(x.GetRecipients()))
			e.Detail = fmt.Sprintf("recipients=%s versions=%v", strings.Join(x.GetRecipients(), ","), x.GetVersions())
		case EventKeyRefreshed:
			e.Kind = audit.KindKeyRefreshed
			e.Key, e.APIUser = ev.KeyID, s.keys[ev.KeyID].GetOwnerId()
			e.Number = uint64(ev.Count)
		case EventAuditTruncated:
			e.Kind = audit.KindTruncated
			a := s.audit.Anchor()
			e.Number, e.Digest = a.Seq, a.Hash.String()
		default:
			// Pool refills: not a decision.
			continue
		}
		s.audit.Append(e)
	}
	if s.audit.Len() > auditHardCap {
		// In batches: trimming one entry per Apply would move the whole
		// retained chain every time.
		s.audit.TrimTo(auditHardCap - auditHardCap/10)
	}
}

// encodeAudit writes the retained chain into a snapshot.
func encodeAudit(st *state, out *protocol.ClusterState) {
	a := st.audit.Anchor()
	out.AuditAnchorSeq = a.Seq
	if a.Seq != 0 {
		out.AuditAnchorHash = a.Hash[:]
	}
	for _, e := range st.audit.Entries(0, 0) {
		out.Audit = append(out.Audit, &protocol.ClusterAuditEntry{
			Seq: e.Seq, Index: e.Index, TimeUnixNano: e.Time.UnixNano(), Kind: uint32(e.Kind), Node: e.Node,
			Request: e.Request, ApiUser: e.APIUser, Subject: e.Subject, Key: e.Key, Presignature: e.Presignature,
			Action: e.Action, Outcome: e.Outcome, Reason: e.Reason, HandlerKey: e.HandlerKey, Digest: e.Digest,
			Detail: e.Detail, Number: e.Number, Hash: e.Hash[:],
		})
	}
}

// decodeAudit restores the retained chain from a snapshot, refusing one
// that does not verify from its anchor: a snapshot cannot rewrite the log.
func decodeAudit(st *state, in *protocol.ClusterState) error {
	if len(in.GetAudit()) > auditHardCap {
		return errorf(ErrBadCommand, "snapshot: %d audit entries", len(in.GetAudit()))
	}
	var a audit.Anchor
	a.Seq = in.GetAuditAnchorSeq()
	if h := in.GetAuditAnchorHash(); len(h) != 0 || a.Seq != 0 {
		if len(h) != audit.HashSize {
			return errorf(ErrBadCommand, "snapshot: audit anchor hash of %d bytes", len(h))
		}
		copy(a.Hash[:], h)
	}
	entries := make([]audit.Entry, 0, len(in.GetAudit()))
	for _, p := range in.GetAudit() {
		if len(p.GetHash()) != audit.HashSize || p.GetKind() > 255 {
			return errorf(ErrBadCommand, "snapshot: audit entry %d is malformed", p.GetSeq())
		}
		e := audit.Entry{
			Seq: p.GetSeq(), Index: p.GetIndex(), Time: time.Unix(0, p.GetTimeUnixNano()).UTC(), Kind: audit.Kind(p.GetKind()),
			Node: p.GetNode(), Request: p.GetRequest(), APIUser: p.GetApiUser(), Subject: p.GetSubject(), Key: p.GetKey(),
			Presignature: p.GetPresignature(), Action: p.GetAction(), Outcome: p.GetOutcome(), Reason: p.GetReason(),
			HandlerKey: p.GetHandlerKey(), Digest: p.GetDigest(), Detail: p.GetDetail(), Number: p.GetNumber(),
		}
		copy(e.Hash[:], p.GetHash())
		entries = append(entries, e)
	}
	c, err := audit.NewChain(a, entries)
	if err != nil {
		return errorf(ErrBadCommand, "snapshot: audit log: %v", err)
	}
	st.audit = *c
	return nil
}

// AuditPage is a run of the audit log as a replica retains it.
type AuditPage struct {
	// Anchor is the entry before the first retained one: entries before it
	// were exported and dropped.
	Anchor audit.Anchor
	// Head is the last entry recorded.
	Head audit.Anchor
	// Entries are the entries asked for, in order.
	Entries []audit.Entry
}

// Audit returns up to limit retained audit entries from seq from on (limit
// <= 0: all), with the chain's anchor and head.
func (f *FSM) Audit(from uint64, limit int) AuditPage {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return AuditPage{Anchor: f.st.audit.Anchor(), Head: f.st.audit.Head(), Entries: f.st.audit.Entries(from, limit)}
}

// AuditSince returns up to limit retained audit entries from the first one
// stamped at t or later, with the chain's anchor and head.
func (f *FSM) AuditSince(t time.Time, limit int) AuditPage {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return AuditPage{Anchor: f.st.audit.Anchor(), Head: f.st.audit.Head(), Entries: f.st.audit.EntriesSince(t.UnixNano(), limit)}
}

// AuditRetained returns how many audit entries the replica retains and
// their total size (audit.Entry.Size).
func (f *FSM) AuditRetained() (entries, bytes int) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.audit.Len(), f.st.audit.Size()
}

// WaitAudit blocks until the replica records an audit entry after seq, or
// ctx ends.
func (f *FSM) WaitAudit(ctx context.Context, seq uint64) error {
	for {
		f.mu.RLock()
		done, ch := f.st.audit.Head().Seq > seq, f.applied
		f.mu.RUnlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Audit returns the local replica's audit entries; see FSM.Audit.
func (c *Cluster) Audit(from uint64, limit int) AuditPage { return c.fsm.Audit(from, limit) }

// AuditSince returns the local replica's audit entries; see FSM.AuditSince.
func (c *Cluster) AuditSince(t time.Time, limit int) AuditPage { return c.fsm.AuditSince(t, limit) }

// AuditRetained returns the local replica's retained audit size; see
// FSM.AuditRetained.
func (c *Cluster) AuditRetained() (entries, bytes int) { return c.fsm.AuditRetained() }

// WaitAudit blocks until the local replica records an audit entry after
// seq, or ctx ends.
func (c *Cluster) WaitAudit(ctx context.Context, seq uint64) error { return c.fsm.WaitAudit(ctx, seq) }

// TruncateAudit drops the audit entries up to upTo, whose hash must be
// hash, through raft: the caller exported them first. Errors wrap
// ErrAudit when the replicas no longer retain that entry or it has another
// hash.
func (c *Cluster) TruncateAudit(ctx context.Context, upTo uint64, hash audit.Digest) error {
	_, err := c.Propose(ctx, AuditTruncateCommand(upTo, hash))
	return err
}

// Decide records the callback handler's decision about a request this
// node owns, through raft.
func (c *Cluster) Decide(ctx context.Context, request string, d Decision) error {
	_, err := c.Propose(ctx, DecideCommand(request, d))
	return err
}

// decisionKey is the context key of ContextWithDecision.
type decisionKey struct{}

// ContextWithDecision returns a context whose Reserve, ReserveNext, or
// AddPresignatures that reserves for a request, carries the callback
// handler's decision d in the same raft entry: the APPROVE that a
// signature rests on is recorded with its first reservation, with no
// commit of its own. The PresignStore and the actors' reserve path pass
// their context through, so the Session that holds the answer sets it.
func ContextWithDecision(ctx context.Context, d Decision) context.Context {
	return context.WithValue(ctx, decisionKey{}, d)
}

// decided attaches ctx's decision, if any, to cmd.
func decided(ctx context.Context, cmd *protocol.ClusterCommand) *protocol.ClusterCommand {
	if d, ok := ctx.Value(decisionKey{}).(Decision); ok {
		return attachDecision(cmd, d)
	}
	return cmd
}

// attachDecision attaches the handler's decision d to cmd, a Reserve or a
// PresignaturesAdded that reserves for a request, so that the decision is
// recorded in the same entry; it returns cmd. Any other command is
// returned unchanged.
func attachDecision(cmd *protocol.ClusterCommand, d Decision) *protocol.ClusterCommand {
	switch b := cmd.GetBody().(type) {
	case *protocol.ClusterCommand_Reserve:
		b.Reserve.Decision = d.proto()
	case *protocol.ClusterCommand_PresignaturesAdded:
		b.PresignaturesAdded.Decision = d.proto()
	}
	return cmd
}
