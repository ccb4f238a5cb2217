package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/cosigner"
	"github.com/coterie-mpc/coterie/workspace/store"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Mpc implements WsCosigner: the MPC relay. The first message is a
// WsMpcStart; then envelopes flow both ways until the cloud co-signers
// finish and the result is sent. The node must keep its side open until it
// has the result.
func (s *Server) Mpc(stream grpc.BidiStreamingServer[protocol.WsMpcClientMessage, protocol.WsMpcServerMessage]) error {
	ctx := stream.Context()
	u := userOf(ctx)
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "the first relay message must be a start")
	}
	if err := needRole(u, true); err != nil {
		return err
	}
	want := protocol.WsUserState_WS_USER_STATE_ACTIVE
	if start.GetKind() == protocol.WsMpcKind_WS_MPC_KIND_KEYGEN {
		want = protocol.WsUserState_WS_USER_STATE_KEYGEN
	}
	if u.GetState() != want {
		return fmt.Errorf("%w: user %s is %s; a %s session needs %s", store.ErrUserState, u.GetId(),
			store.StateName(u.GetState()), kindName(start.GetKind()), store.StateName(want))
	}
	if !s.acquire(u.GetId()) {
		return status.Errorf(codes.ResourceExhausted, "user %s already runs %d relay sessions", u.GetId(), s.cfg.MaxSessionsPerUser)
	}
	defer s.release(u.GetId())

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	in := make(chan *protocol.MpcEnvelope, 64)
	go func() {
		defer close(in)
		for {
			msg, err := stream.Recv()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					cancel(err)
				}
				return
			}
			b := msg.GetEnvelope()
			if b == nil {
				cancel(status.Error(codes.InvalidArgument, "after the start, the relay takes only envelopes"))
				return
			}
			env, err := mpc.DecodeEnvelope(b)
			if err != nil {
				cancel(status.Errorf(codes.InvalidArgument, "relay envelope rejected: %v", err))
				return
			}
			select {
			case in <- env:
			case <-ctx.Done():
				return
			}
		}
	}()
	send := func(env *protocol.MpcEnvelope) error {
		b, err := mpc.EncodeEnvelope(env)
		if err != nil {
			return err
		}
		return stream.Send(&protocol.WsMpcServerMessage{Msg: &protocol.WsMpcServerMessage_Envelope{Envelope: b}})
	}
	res, err := s.cfg.Cosigners.Run(ctx, u, start, in, send)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		if _, ok := status.FromError(cause); ok {
			return cause // the node's malformed message, or its transport failing
		}
	}
	if err != nil {
		if cosigner.IsNodeFault(err, u.GetSigningKey().GetNodePartyId()) {
			s.log.Warn("relay session failed by the node", "user", u.GetId(), "kind", kindName(start.GetKind()), "err", err)
		} else {
			s.log.Warn("relay session failed", "user", u.GetId(), "kind", kindName(start.GetKind()), "err", err)
		}
		return err
	}
	return stream.Send(&protocol.WsMpcServerMessage{Msg: &protocol.WsMpcServerMessage_Result{Result: res}})
}

func kindName(k protocol.WsMpcKind) string {
	switch k {
	case protocol.WsMpcKind_WS_MPC_KIND_KEYGEN:
		return "keygen"
	case protocol.WsMpcKind_WS_MPC_KIND_PRESIGN:
		return "presign"
	case protocol.WsMpcKind_WS_MPC_KIND_SIGN:
		return "sign"
	case protocol.WsMpcKind_WS_MPC_KIND_REFRESH:
		return "refresh"
	default:
		return fmt.Sprintf("kind-%d", k)
	}
}

func (s *Server) acquire(user string) bool {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	if s.sessions[user] >= s.cfg.MaxSessionsPerUser {
		return false
	}
	s.sessions[user]++
	return true
}

func (s *Server) release(user string) {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	if s.sessions[user]--; s.sessions[user] <= 0 {
		delete(s.sessions, user)
	}
}
