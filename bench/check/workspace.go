package check

import (
	"context"
	"errors"
	"fmt"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/store"
	"google.golang.org/grpc"
)

// ErrBadRecords is returned by the loaders when a source answers something
// they cannot read: a malformed ledger entry, a listing that does not
// advance, a log line that does not parse.
var ErrBadRecords = errors.New("check: records do not read")

// Workspace is the part of the workspace's admin API that FromWorkspace
// reads; *client.Admin implements it. Its calls may run concurrently.
type Workspace interface {
	ListRequests(ctx context.Context, in *protocol.WsListRequestsRequest, opts ...grpc.CallOption) (*protocol.WsListRequestsResponse, error)
	ListUsers(ctx context.Context, in *protocol.WsListUsersRequest, opts ...grpc.CallOption) (*protocol.WsListUsersResponse, error)
	ListAudit(ctx context.Context, in *protocol.WsListAuditRequest, opts ...grpc.CallOption) (*protocol.WsListAuditResponse, error)
}

// ledgerAction is the workspace's audit action for a presignature the
// cloud co-signers consumed (store.StartSign), recorded in the same
// transaction that marks it used: the audit log is the ledger's history
// as the admin API exposes it.
const ledgerAction = "presignature.use"

// FromWorkspace reads the workspace's requests, its users' signing keys
// and the cloud co-signers' presignature ledger into Records.
func FromWorkspace(ctx context.Context, ws Workspace) (Records, error) {
	var recs Records
	users, err := ws.ListUsers(ctx, &protocol.WsListUsersRequest{})
	if err != nil {
		return recs, fmt.Errorf("check: workspace users: %w", err)
	}
	recs.Keys = map[string]SigningKey{}
	for _, u := range users.GetUsers() {
		if k := u.GetSigningKey(); len(k.GetPublicKey()) > 0 {
			recs.Keys[u.GetId()] = SigningKey{PublicKey: k.GetPublicKey(), ChainCode: k.GetChainCode()}
		}
	}
	err = pages(func(after uint64) (uint64, error) {
		resp, err := ws.ListRequests(ctx, &protocol.WsListRequestsRequest{AfterSeq: after})
		if err != nil {
			return 0, fmt.Errorf("check: workspace requests: %w", err)
		}
		for _, r := range resp.GetRequests() {
			recs.Requests = append(recs.Requests, request(r))
		}
		return resp.GetNextAfterSeq(), nil
	})
	if err != nil {
		return recs, err
	}
	err = pages(func(after uint64) (uint64, error) {
		resp, err := ws.ListAudit(ctx, &protocol.WsListAuditRequest{AfterSeq: after})
		if err != nil {
			return 0, fmt.Errorf("check: workspace audit: %w", err)
		}
		for _, e := range resp.GetEntries() {
			if e.GetAction() != ledgerAction {
				continue
			}
			u := LedgerUse{RequestID: e.GetRequestId()}
			if _, err := fmt.Sscanf(e.GetDetail(), "presignature=%s digest=%d", &u.PresignID, &u.DigestIndex); err != nil || u.RequestID == "" {
				return 0, fmt.Errorf("%w: audit entry %d: %s %q", ErrBadRecords, e.GetSeq(), ledgerAction, e.GetDetail())
			}
			recs.Ledger = append(recs.Ledger, u)
		}
		return resp.GetNextAfterSeq(), nil
	})
	return recs, err
}

// maxPages bounds a listing: at the workspace's page size of 1,000, ten
// million records.
const maxPages = 10_000

// pages calls page from cursor 0 until it answers 0, and refuses a cursor
// that does not advance, so that a broken listing cannot loop.
func pages(page func(after uint64) (next uint64, err error)) error {
	var after uint64
	for range maxPages {
		next, err := page(after)
		if err != nil || next == 0 {
			return err
		}
		if next <= after {
			return fmt.Errorf("%w: a listing went back from %d to %d", ErrBadRecords, after, next)
		}
		after = next
	}
	return fmt.Errorf("%w: a listing goes past %d pages", ErrBadRecords, maxPages)
}

func request(r *protocol.WsRequest) Request {
	out := Request{ID: r.GetId(), UserID: r.GetUserId(), State: State(store.RequestStateName(r.GetState())),
		Reason: r.GetReason(), Approved: len(r.GetApprovalSignature()) > 0}
	for _, d := range r.GetTransaction().GetDigests() {
		out.Digests = append(out.Digests, Digest{Digest: d.GetDigest(), Path: d.GetDerivationPath()})
	}
	for _, s := range r.GetSignatures() {
		out.Signatures = append(out.Signatures, Signature{Index: s.GetIndex(), Sig: s.GetSignature(), PresignID: s.GetPresignId(), PublicKey: s.GetPublicKey()})
	}
	return out
}
