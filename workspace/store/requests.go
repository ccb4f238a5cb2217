package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/request"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// requestID returns the ID of the request with sequence number seq: the
// store's prefix (see WsSetup) and the number.
func requestID(prefix string, seq uint64) string { return fmt.Sprintf("%s%06d", prefix, seq) }

// parseRequestID returns the sequence number in a request ID.
func parseRequestID(prefix, id string) (uint64, error) {
	digits, ok := strings.CutPrefix(id, prefix)
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrUnknownRequest, id)
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || seq == 0 || requestID(prefix, seq) != id {
		return 0, fmt.Errorf("%w: %q", ErrUnknownRequest, id)
	}
	return seq, nil
}

// Submission is a request to queue for an API user: exactly one of
// Transaction and ConfigChange is set.
type Submission struct {
	UserID string
	// IdempotencyKey, when set, makes the submission at most once per user.
	IdempotencyKey string
	// TTL is the request's lifetime; 0 means Config.RequestTTL.
	TTL          time.Duration
	Actor        string
	Transaction  *protocol.WsTransaction
	ConfigChange *protocol.WsConfigChange
}

// Submit validates and queues a request, and wakes the user's pollers once
// it is committed. A transaction's only destination without an amount gets
// the transaction's (request.FillAmounts), and a transaction that names no
// digests gets one built by request.BuildDigest. Errors: request.ErrInvalid, ErrUnknownUser,
// ErrUserState (not paired), ErrWrongRole, ErrUnknownVault, *ReplayError
// (same idempotency key and content: nothing stored) and
// ErrIdempotencyConflict.
func (s *Store) Submit(sub Submission) (*protocol.WsRequest, error) {
	var body proto.Message
	kind := protocol.WsRequestKind_WS_REQUEST_KIND_TRANSACTION
	switch {
	case (sub.Transaction == nil) == (sub.ConfigChange == nil):
		return nil, fmt.Errorf("%w: a submission holds exactly one transaction or config change", request.ErrInvalid)
	case sub.Transaction != nil:
		if err := request.ValidateTransaction(sub.Transaction); err != nil {
			return nil, err
		}
		body = sub.Transaction
	default:
		if err := request.ValidateConfigChange(sub.ConfigChange); err != nil {
			return nil, err
		}
		body = sub.ConfigChange
		kind = protocol.WsRequestKind_WS_REQUEST_KIND_CONFIG_CHANGE
	}
	if sub.TTL < 0 || sub.TTL > request.MaxTTL {
		return nil, fmt.Errorf("%w: ttl %s out of range", request.ErrInvalid, sub.TTL)
	}
	ttl := sub.TTL
	if ttl == 0 {
		ttl = s.cfg.RequestTTL
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("store: marshal submission: %w", err)
	}
	h := sha256.New()
	h.Write([]byte{byte(kind)})
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(sub.TTL)))
	h.Write(raw)
	contentHash := h.Sum(nil)

	var out *protocol.WsRequest
	err = s.update(func(t *txn) error {
		u, err := t.user(sub.UserID)
		if err != nil {
			return err
		}
		if u.State != protocol.WsUserState_WS_USER_STATE_ACTIVE {
			return fmt.Errorf("%w: user %s is %s; pair it (and finish key generation) first", ErrUserState, u.Id, StateName(u.State))
		}
		if kind == protocol.WsRequestKind_WS_REQUEST_KIND_TRANSACTION && !IsSigner(u.Role) {
			return fmt.Errorf("%w: user %s is an approver; transactions need a signer", ErrWrongRole, u.Id)
		}
		if kind == protocol.WsRequestKind_WS_REQUEST_KIND_CONFIG_CHANGE && !IsApprover(u.Role) {
			return fmt.Errorf("%w: user %s is a signer; config changes need an approver", ErrWrongRole, u.Id)
		}
		if sub.Transaction != nil {
			src := sub.Transaction.GetSource().GetId()
			if t.tx.Bucket(bVaults).Get(vaultKey(u.WorkspaceId, src)) == nil {
				return fmt.Errorf("%w: %s in workspace %s", ErrUnknownVault, src, u.WorkspaceId)
			}
		}
		idem := t.tx.Bucket(bIdem)
		idemKey := userKey(u.Id, []byte(sub.IdempotencyKey))
		if sub.IdempotencyKey != "" {
			rec, ok, err := get(idem, idemKey, &protocol.WsIdempotencyRecord{})
			if err != nil {
				return err
			}
			if ok {
				if !bytes.Equal(rec.ContentSha256, contentHash) {
					return fmt.Errorf("%w: key %q created %s", ErrIdempotencyConflict, sub.IdempotencyKey, rec.RequestId)
				}
				first, err := t.request(rec.RequestId)
				if err != nil {
					return err
				}
				return &ReplayError{Request: first}
			}
		}
		seq, err := t.tx.Bucket(bRequests).NextSequence()
		if err != nil {
			return err
		}
		prefix, err := requestPrefix(t.tx)
		if err != nil {
			return err
		}
		r := &protocol.WsRequest{
			Id: requestID(prefix, seq), Seq: seq, WorkspaceId: u.WorkspaceId, UserId: u.Id, Kind: kind,
			State: protocol.WsRequestState_WS_REQUEST_STATE_PENDING, CreatedAt: t.nanos(),
			ExpiresAt: t.now.Add(ttl).UnixNano(), IdempotencyKey: sub.IdempotencyKey,
		}
		if sub.Transaction != nil {
			tx := proto.Clone(sub.Transaction).(*protocol.WsTransaction)
			request.FillAmounts(tx)
			if len(tx.Digests) == 0 {
				d, err := request.BuildDigest(r.WorkspaceId, r.Id, tx)
				if err != nil {
					return err
				}
				tx.Digests = []*protocol.WsDigestToSign{d}
			}
			r.Body = &protocol.WsRequest_Transaction{Transaction: tx}
		} else {
			r.Body = &protocol.WsRequest_ConfigChange{ConfigChange: proto.Clone(sub.ConfigChange).(*protocol.WsConfigChange)}
		}
		if err := t.save(r); err != nil {
			return err
		}
		if sub.IdempotencyKey != "" {
			if err := put(idem, idemKey, &protocol.WsIdempotencyRecord{RequestId: r.Id, ContentSha256: contentHash}); err != nil {
				return err
			}
		}
		t.wake[u.Id] = struct{}{}
		out = r
		return t.audit(sub.Actor, "request.submit", u.Id, r.Id, describe(r))
	})
	return out, err
}

// describe summarises a request for the audit log.
func describe(r *protocol.WsRequest) string {
	if tx := r.GetTransaction(); tx != nil {
		return fmt.Sprintf("transaction %s %s digests=%d", tx.Amount, tx.Asset, len(tx.Digests))
	}
	return "config change " + request.TypeName(r.GetConfigChange().GetType())
}

// save writes r, stamping its update time and keeping the open index.
func (t *txn) save(r *protocol.WsRequest) error {
	r.UpdatedAt = t.nanos()
	if err := put(t.tx.Bucket(bRequests), u64(r.Seq), r); err != nil {
		return err
	}
	open := t.tx.Bucket(bOpen)
	k := userKey(r.UserId, u64(r.Seq))
	if Terminal(r.State) {
		return open.Delete(k)
	}
	return open.Put(k, []byte{})
}

func (t *txn) request(id string) (*protocol.WsRequest, error) {
	prefix, err := requestPrefix(t.tx)
	if err != nil {
		return nil, err
	}
	seq, err := parseRequestID(prefix, id)
	if err != nil {
		return nil, err
	}
	r, ok, err := get(t.tx.Bucket(bRequests), u64(seq), &protocol.WsRequest{})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRequest, id)
	}
	return r, nil
}

// userRequest returns a request that belongs to userID; another user's
// request is reported as unknown, so its existence does not leak.
func (t *txn) userRequest(userID, id string) (*protocol.WsRequest, error) {
	r, err := t.request(id)
	if err != nil {
		return nil, err
	}
	if r.UserId != userID {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRequest, id)
	}
	return r, nil
}

// Request returns a request by ID.
func (s *Store) Request(id string) (*protocol.WsRequest, error) {
	var out *protocol.WsRequest
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = (&txn{tx: tx}).request(id)
		return err
	})
	return out, err
}

// UserRequest returns a request of userID by ID; another user's request is
// ErrUnknownRequest.
func (s *Store) UserRequest(userID, id string) (*protocol.WsRequest, error) {
	var out *protocol.WsRequest
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = (&txn{tx: tx}).userRequest(userID, id)
		return err
	})
	return out, err
}

// OpenAfter returns up to limit open requests of userID with seq greater
// than cursor, in seq order.
func (s *Store) OpenAfter(userID string, cursor uint64, limit int) ([]*protocol.WsRequest, error) {
	var out []*protocol.WsRequest
	err := s.view(func(tx *bolt.Tx) error {
		prefix := userKey(userID, nil)
		reqs := tx.Bucket(bRequests)
		c := tx.Bucket(bOpen).Cursor()
		for k, _ := c.Seek(userKey(userID, u64(cursor+1))); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Next() {
			r, ok, err := get(reqs, k[len(prefix):], &protocol.WsRequest{})
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: open index names missing request %x", ErrCorrupt, k[len(prefix):])
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// ListFilter selects requests for List.
type ListFilter struct {
	// State, when set, keeps requests in that state.
	State protocol.WsRequestState
	// UserID, when set, keeps that user's requests.
	UserID string
	// AfterSeq starts the listing after that seq.
	AfterSeq uint64
	// Limit caps the result; 0 or more than 1000 means 1000.
	Limit int
}

// List returns requests in seq order, and the seq to continue from (0 when
// the listing is complete).
func (s *Store) List(f ListFilter) ([]*protocol.WsRequest, uint64, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 1000
	}
	var out []*protocol.WsRequest
	var next uint64
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRequests).Cursor()
		for k, v := c.Seek(u64(f.AfterSeq + 1)); k != nil; k, v = c.Next() {
			r := &protocol.WsRequest{}
			if err := unmarshal(v, r); err != nil {
				return err
			}
			if (f.State != 0 && r.State != f.State) || (f.UserID != "" && r.UserId != f.UserID) {
				continue
			}
			if len(out) == f.Limit {
				next = out[len(out)-1].Seq
				break
			}
			out = append(out, r)
		}
		return nil
	})
	return out, next, err
}

// ForEachRequest calls fn for every request in seq order, in one read
// transaction; fn must not call the Store's update methods.
func (s *Store) ForEachRequest(fn func(*protocol.WsRequest) error) error {
	return s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bRequests).ForEach(func(_, v []byte) error {
			r := &protocol.WsRequest{}
			if err := unmarshal(v, r); err != nil {
				return err
			}
			return fn(r)
		})
	})
}

// MarkDelivered moves the given requests of userID from PENDING to
// DELIVERED. It does not wait for the commit: delivery state is
// informational, and the poller must not wait for a write.
func (s *Store) MarkDelivered(userID string, seqs []uint64) error {
	seqs = slices.Clone(seqs)
	return s.updateAsync(func(t *txn) error {
		for _, seq := range seqs {
			r, ok, err := get(t.tx.Bucket(bRequests), u64(seq), &protocol.WsRequest{})
			if err != nil {
				return err
			}
			if !ok || r.UserId != userID || r.State != protocol.WsRequestState_WS_REQUEST_STATE_PENDING {
				continue
			}
			r.State = protocol.WsRequestState_WS_REQUEST_STATE_DELIVERED
			r.DeliveredAt = t.nanos()
			if err := t.save(r); err != nil {
				return err
			}
		}
		return nil
	})
}

func (t *txn) claim(r *protocol.WsRequest) {
	if r.State == protocol.WsRequestState_WS_REQUEST_STATE_PENDING || r.State == protocol.WsRequestState_WS_REQUEST_STATE_DELIVERED {
		r.State = protocol.WsRequestState_WS_REQUEST_STATE_CLAIMED
		r.ClaimedAt = t.nanos()
		if r.DeliveredAt == 0 {
			r.DeliveredAt = t.nanos()
		}
	}
}

func notOpen(r *protocol.WsRequest) error {
	return fmt.Errorf("%w: %s is %s", ErrNotOpen, r.Id, RequestStateName(r.State))
}

// Claim marks an open request of userID claimed. Claiming a claimed request
// again succeeds; a terminal request is ErrNotOpen.
func (s *Store) Claim(userID, id, claimant string) (*protocol.WsRequest, error) {
	var out *protocol.WsRequest
	err := s.update(func(t *txn) error {
		r, err := t.userRequest(userID, id)
		if err != nil {
			return err
		}
		if Terminal(r.State) {
			return notOpen(r)
		}
		out = r
		if r.State == protocol.WsRequestState_WS_REQUEST_STATE_CLAIMED {
			return nil
		}
		t.claim(r)
		if err := t.save(r); err != nil {
			return err
		}
		return t.audit(ActorUser(userID), "request.claim", userID, id, "claimant="+claimant)
	})
	return out, err
}

func signatureAt(r *protocol.WsRequest, index uint32) *protocol.WsDigestSignature {
	for _, s := range r.Signatures {
		if s.Index == index {
			return s
		}
	}
	return nil
}

// signable checks that digest index of r can take a signature.
func signable(r *protocol.WsRequest, index uint32) error {
	if r.Kind != protocol.WsRequestKind_WS_REQUEST_KIND_TRANSACTION {
		return fmt.Errorf("%w: %s is a config change; it takes an approval", ErrWrongKind, r.Id)
	}
	if int(index) >= len(r.GetTransaction().GetDigests()) {
		return fmt.Errorf("%w: %s has %d digests, index %d", ErrDigestIndex, r.Id, len(r.GetTransaction().GetDigests()), index)
	}
	return nil
}

// StartSign checks that digest index of request id (of userID) awaits a
// signature and takes presignature presignID for it, in one transaction: the
// presignature is marked used and its shares removed whatever happens next,
// so it never signs twice (I1). It returns the request and the cloud
// co-signers' encrypted presignature shares. Errors: ErrUnknownRequest,
// ErrWrongKind, ErrDigestIndex, ErrNotOpen, ErrDigestSigned,
// ErrPresignatureUnknown, ErrPresignatureUsed.
func (s *Store) StartSign(userID, id string, index uint32, presignID [32]byte) (*protocol.WsRequest, map[string][]byte, error) {
	var out *protocol.WsRequest
	var shares map[string][]byte
	err := s.update(func(t *txn) error {
		r, err := t.userRequest(userID, id)
		if err != nil {
			return err
		}
		if err := signable(r, index); err != nil {
			return err
		}
		if Terminal(r.State) {
			return notOpen(r)
		}
		if signatureAt(r, index) != nil {
			return fmt.Errorf("%w: %s digest %d", ErrDigestSigned, id, index)
		}
		b := t.tx.Bucket(bPresigs)
		key := userKey(userID, presignID[:])
		rec, ok, err := get(b, key, &protocol.WsPresignRecord{})
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %x", ErrPresignatureUnknown, presignID)
		}
		if rec.UsedAt != 0 {
			return fmt.Errorf("%w: %x was used for %s", ErrPresignatureUsed, presignID, usedFor(rec))
		}
		shares = rec.Shares
		rec.Shares = nil
		rec.UsedAt = t.nanos()
		rec.RequestId = id
		rec.DigestIndex = index
		if err := put(b, key, rec); err != nil {
			return err
		}
		t.claim(r)
		if err := t.save(r); err != nil {
			return err
		}
		out = r
		return t.audit(ActorUser(userID), "presignature.use", userID, id, fmt.Sprintf("presignature=%x digest=%d", presignID, index))
	})
	return out, shares, err
}

func usedFor(rec *protocol.WsPresignRecord) string {
	if rec.BurnedReason != "" {
		return "nothing: burned, " + rec.BurnedReason
	}
	return fmt.Sprintf("%s digest %d", rec.RequestId, rec.DigestIndex)
}

// Signed is a verified signature of one digest, as RecordSignature records
// it.
type Signed struct {
	// Signature is r||s, 64 bytes, low S.
	Signature []byte
	// RecoveryID recovers PublicKey from the signature and the digest.
	RecoveryID byte
	// PublicKey is the compressed key derived for the digest's path.
	PublicKey []byte
	// PresignID names the presignature the cloud co-signers used; empty
	// when the node submitted the signature.
	PresignID string
}

// RecordSignature records a verified signature for digest index of request
// id; the caller has checked it against the derived public key. When all
// digests are signed the request is SIGNED. If the digest already has a
// signature, the recorded one is kept, the duplicate is counted, and
// duplicate is true. Errors: ErrUnknownRequest, ErrWrongKind,
// ErrDigestIndex, ErrNotOpen (rejected, failed or expired).
func (s *Store) RecordSignature(userID, id string, index uint32, signed Signed, actor string) (_ *protocol.WsRequest, duplicate bool, _ error) {
	rec := &protocol.WsDigestSignature{
		Index: index, Signature: slices.Clone(signed.Signature), PresignId: signed.PresignID,
		RecoveryId: proto.Uint32(uint32(signed.RecoveryID)), PublicKey: slices.Clone(signed.PublicKey),
	}
	var out *protocol.WsRequest
	err := s.update(func(t *txn) error {
		duplicate = false
		r, err := t.userRequest(userID, id)
		if err != nil {
			return err
		}
		if err := signable(r, index); err != nil {
			return err
		}
		if signatureAt(r, index) != nil {
			duplicate = true
			out = r
			return t.countDuplicate(r, actor, fmt.Sprintf("signature digest=%d", index))
		}
		if Terminal(r.State) {
			return notOpen(r)
		}
		sig := proto.Clone(rec).(*protocol.WsDigestSignature)
		sig.SignedAt = t.nanos()
		r.Signatures = append(r.Signatures, sig)
		slices.SortFunc(r.Signatures, func(a, b *protocol.WsDigestSignature) int { return int(a.Index) - int(b.Index) })
		t.claim(r)
		action := "digest.sign"
		if len(r.Signatures) == len(r.GetTransaction().GetDigests()) {
			r.State = protocol.WsRequestState_WS_REQUEST_STATE_SIGNED
			r.CompletedAt = t.nanos()
			action = "request.sign"
		}
		if err := t.save(r); err != nil {
			return err
		}
		out = r
		return t.audit(actor, action, userID, id, fmt.Sprintf("digest=%d presignature=%s recovery_id=%d", index, signed.PresignID, signed.RecoveryID))
	})
	return out, duplicate, err
}

func (t *txn) countDuplicate(r *protocol.WsRequest, actor, what string) error {
	r.DuplicateCompletions++
	if err := t.save(r); err != nil {
		return err
	}
	if err := t.incr(mDuplicates); err != nil {
		return err
	}
	return t.audit(actor, "request.duplicate", r.UserId, r.Id, what)
}

// RecordApproval records a verified approval signature for config-change
// request id, which becomes APPROVED. A second approval is a counted
// duplicate. Errors: ErrUnknownRequest, ErrWrongKind, ErrNotOpen.
func (s *Store) RecordApproval(userID, id string, sig []byte) (_ *protocol.WsRequest, duplicate bool, _ error) {
	sig = slices.Clone(sig)
	var out *protocol.WsRequest
	err := s.update(func(t *txn) error {
		duplicate = false
		r, err := t.userRequest(userID, id)
		if err != nil {
			return err
		}
		if r.Kind != protocol.WsRequestKind_WS_REQUEST_KIND_CONFIG_CHANGE {
			return fmt.Errorf("%w: %s is a transaction; it takes signatures", ErrWrongKind, id)
		}
		if r.State == protocol.WsRequestState_WS_REQUEST_STATE_APPROVED {
			duplicate = true
			out = r
			return t.countDuplicate(r, ActorUser(userID), "approval")
		}
		if Terminal(r.State) {
			return notOpen(r)
		}
		r.ApprovalSignature = sig
		r.State = protocol.WsRequestState_WS_REQUEST_STATE_APPROVED
		r.CompletedAt = t.nanos()
		if r.DeliveredAt == 0 {
			r.DeliveredAt = t.nanos()
		}
		if err := t.save(r); err != nil {
			return err
		}
		out = r
		return t.audit(ActorUser(userID), "request.approve", userID, id, "")
	})
	return out, duplicate, err
}

// Reject records the callback handler's rejection of an open request. The
// same rejection again is a counted duplicate. Errors: ErrUnknownRequest,
// ErrNotOpen.
func (s *Store) Reject(userID, id, reason string) (*protocol.WsRequest, bool, error) {
	return s.finish(userID, id, protocol.WsRequestState_WS_REQUEST_STATE_REJECTED, reason, "request.reject")
}

// Fail records that the co-signer gave up on an open request, with a
// reason. The same failure again is a counted duplicate. Errors:
// ErrUnknownRequest, ErrNotOpen.
func (s *Store) Fail(userID, id, reason string) (*protocol.WsRequest, bool, error) {
	return s.finish(userID, id, protocol.WsRequestState_WS_REQUEST_STATE_FAILED, reason, "request.fail")
}

// Ignore records that the callback handler answered IGNORE to an open
// config change: the request becomes IGNORED, with IgnoredReason (and the
// handler's reason, which may be empty) as its reason, and stays open for
// the workspace's other approvers. The same answer again is a counted
// duplicate. Errors: ErrUnknownRequest, ErrWrongKind (a transaction: IGNORE
// is for config changes only), ErrNotOpen.
func (s *Store) Ignore(userID, id, reason string) (_ *protocol.WsRequest, duplicate bool, _ error) {
	if err := request.ValidateIgnore(id, reason); err != nil {
		return nil, false, err
	}
	shown := IgnoredReason
	if reason != "" {
		shown += ": " + reason
	}
	var out *protocol.WsRequest
	err := s.update(func(t *txn) error {
		duplicate = false
		r, err := t.userRequest(userID, id)
		if err != nil {
			return err
		}
		if r.Kind != protocol.WsRequestKind_WS_REQUEST_KIND_CONFIG_CHANGE {
			return fmt.Errorf("%w: %s is a transaction; IGNORE is for config changes only, so sign or reject it", ErrWrongKind, id)
		}
		if r.State == protocol.WsRequestState_WS_REQUEST_STATE_IGNORED {
			duplicate = true
			out = r
			return t.countDuplicate(r, ActorUser(userID), "ignore")
		}
		if Terminal(r.State) {
			return notOpen(r)
		}
		r.State = protocol.WsRequestState_WS_REQUEST_STATE_IGNORED
		r.Reason = shown
		if r.DeliveredAt == 0 {
			r.DeliveredAt = t.nanos()
		}
		if err := t.save(r); err != nil {
			return err
		}
		out = r
		return t.audit(ActorUser(userID), "request.ignore", userID, id, reason)
	})
	return out, duplicate, err
}

func (s *Store) finish(userID, id string, state protocol.WsRequestState, reason, action string) (_ *protocol.WsRequest, duplicate bool, _ error) {
	if err := request.ValidateReason(id, reason); err != nil {
		return nil, false, err
	}
	var out *protocol.WsRequest
	err := s.update(func(t *txn) error {
		duplicate = false
		r, err := t.userRequest(userID, id)
		if err != nil {
			return err
		}
		if r.State == state {
			duplicate = true
			out = r
			return t.countDuplicate(r, ActorUser(userID), RequestStateName(state))
		}
		if Terminal(r.State) {
			return notOpen(r)
		}
		r.State = state
		r.Reason = reason
		r.CompletedAt = t.nanos()
		if err := t.save(r); err != nil {
			return err
		}
		out = r
		return t.audit(ActorUser(userID), action, userID, id, reason)
	})
	return out, duplicate, err
}

// ExpireDue moves every open request whose expiry has passed to EXPIRED and
// returns how many it moved. It finds them in a read transaction, so the
// scan does not hold up writers, and writes only when something is due.
func (s *Store) ExpireDue() (int, error) {
	now := s.clock.Now().UnixNano()
	var due []uint64
	err := s.view(func(tx *bolt.Tx) error {
		reqs := tx.Bucket(bRequests)
		return tx.Bucket(bOpen).ForEach(func(k, _ []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 || len(k)-i-1 != 8 {
				return fmt.Errorf("%w: open index key %x", ErrCorrupt, k)
			}
			r, ok, err := get(reqs, k[i+1:], &protocol.WsRequest{})
			if err != nil || !ok {
				return errors.Join(err, fmt.Errorf("%w: open index names missing request", ErrCorrupt))
			}
			if r.ExpiresAt <= now {
				due = append(due, r.Seq)
			}
			return nil
		})
	})
	if err != nil || len(due) == 0 {
		return 0, err
	}
	var n int
	err = s.update(func(t *txn) error {
		n = 0
		for _, seq := range due {
			r, ok, err := get(t.tx.Bucket(bRequests), u64(seq), &protocol.WsRequest{})
			if err != nil {
				return err
			}
			// Re-check: it may have completed since the scan.
			if !ok || Terminal(r.State) || r.ExpiresAt > t.nanos() {
				continue
			}
			after := ""
			if r.State == protocol.WsRequestState_WS_REQUEST_STATE_IGNORED {
				after = " after this co-signer ignored it"
			}
			r.State = protocol.WsRequestState_WS_REQUEST_STATE_EXPIRED
			r.Reason = "expired at " + time.Unix(0, r.ExpiresAt).UTC().Format(time.RFC3339) + " with no outcome" + after
			r.CompletedAt = t.nanos()
			if err := t.save(r); err != nil {
				return err
			}
			if err := t.audit(ActorSystem, "request.expire", r.UserId, r.Id, ""); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// Stats returns counts of requests by state, users, duplicates,
// presignatures and recorded signatures and approvals.
func (s *Store) Stats() (*protocol.WsStatsResponse, error) {
	out := &protocol.WsStatsResponse{RequestsByState: map[string]uint64{}}
	err := s.view(func(tx *bolt.Tx) error {
		out.Users = uint64(tx.Bucket(bUsers).Stats().KeyN)
		out.DuplicateCompletions = counter(tx, mDuplicates)
		err := tx.Bucket(bRequests).ForEach(func(_, v []byte) error {
			r := &protocol.WsRequest{}
			if err := unmarshal(v, r); err != nil {
				return err
			}
			out.RequestsByState[RequestStateName(r.State)]++
			out.Signatures += uint64(len(r.Signatures))
			if len(r.ApprovalSignature) > 0 {
				out.Approvals++
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bPresigs).ForEach(func(_, v []byte) error {
			rec := &protocol.WsPresignRecord{}
			if err := unmarshal(v, rec); err != nil {
				return err
			}
			if rec.UsedAt != 0 {
				out.PresignaturesUsed++
			} else {
				out.PresignaturesStored++
			}
			return nil
		})
	})
	return out, err
}
