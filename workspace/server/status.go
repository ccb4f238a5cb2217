package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/cosigner"
	"github.com/coterie-mpc/coterie/workspace/pki"
	"github.com/coterie-mpc/coterie/workspace/request"
	"github.com/coterie-mpc/coterie/workspace/store"
	"github.com/coterie-mpc/coterie/workspace/token"
	"github.com/coterie-mpc/coterie/workspace/verify"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// codeTable maps the sentinel errors of the workspace's packages to gRPC
// codes. The first match wins.
var codeTable = []struct {
	err  error
	code codes.Code
}{
	{request.ErrInvalid, codes.InvalidArgument},
	{token.ErrMalformed, codes.InvalidArgument},
	{pki.ErrBadCSR, codes.InvalidArgument},
	{verify.ErrBadSignature, codes.InvalidArgument},
	{verify.ErrBadApproval, codes.InvalidArgument},
	{cosigner.ErrBadStart, codes.InvalidArgument},
	{cosigner.ErrNodeMessage, codes.InvalidArgument},
	{mpc.ErrMalformed, codes.InvalidArgument},
	{mpc.ErrOversize, codes.InvalidArgument},
	{mpc.ErrInvalidParams, codes.InvalidArgument},
	{mpc.ErrInvalidPath, codes.InvalidArgument},
	{store.ErrDigestIndex, codes.InvalidArgument},

	{token.ErrBadMAC, codes.Unauthenticated},
	{token.ErrExpired, codes.Unauthenticated},
	{store.ErrUnknownToken, codes.Unauthenticated},
	{store.ErrTokenUsed, codes.Unauthenticated},
	{store.ErrTokenRevoked, codes.Unauthenticated},
	{store.ErrTokenExpired, codes.Unauthenticated},

	{store.ErrWrongRole, codes.PermissionDenied},

	{store.ErrUnknownWorkspace, codes.NotFound},
	{store.ErrUnknownVault, codes.NotFound},
	{store.ErrUnknownUser, codes.NotFound},
	{store.ErrUnknownRequest, codes.NotFound},
	{store.ErrPresignatureUnknown, codes.NotFound},

	{store.ErrReplayed, codes.AlreadyExists},
	{store.ErrIdempotencyConflict, codes.AlreadyExists},
	{store.ErrPresignatureExists, codes.AlreadyExists},

	{store.ErrUserState, codes.FailedPrecondition},
	{store.ErrNotOpen, codes.FailedPrecondition},
	{store.ErrWrongKind, codes.FailedPrecondition},
	{store.ErrDigestSigned, codes.FailedPrecondition},
	{store.ErrPresignatureUsed, codes.FailedPrecondition},
	{store.ErrKeyChanged, codes.FailedPrecondition},
	{mpc.ErrPresignatureUsed, codes.FailedPrecondition},
	{mpc.ErrPresignatureMismatch, codes.FailedPrecondition},
	{cosigner.ErrNotConfigured, codes.FailedPrecondition},
	{cosigner.ErrEpochMismatch, codes.FailedPrecondition},
	{store.ErrUnknownEpoch, codes.FailedPrecondition},
	{store.ErrTooManyRefreshes, codes.FailedPrecondition},
	{verify.ErrNoKey, codes.FailedPrecondition},

	{cosigner.ErrBusy, codes.Aborted},
	{cosigner.ErrNodeGone, codes.Aborted},

	{store.ErrClosed, codes.Unavailable},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
}

// toStatus converts an error to a gRPC status error. Errors the table does
// not know are Internal and logged.
func toStatus(log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var replay *store.ReplayError
	if errors.As(err, &replay) {
		st := status.New(codes.AlreadyExists, err.Error())
		if withReq, derr := st.WithDetails(replay.Request); derr == nil {
			st = withReq
		}
		return st.Err()
	}
	var abort *mpc.AbortError
	var peer *mpc.PeerAbortError
	if errors.As(err, &abort) || errors.As(err, &peer) {
		return status.Error(codes.Aborted, err.Error())
	}
	for _, e := range codeTable {
		if errors.Is(err, e.err) {
			return status.Error(e.code, err.Error())
		}
	}
	log.Error("internal error", "err", err)
	return status.Error(codes.Internal, err.Error())
}
