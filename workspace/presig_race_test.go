package workspace_test

import (
	"context"
	"sync"
	"testing"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestConcurrentPresignatureUse starts two SIGN sessions at once with the
// same presignature, for two open requests. Whichever interleaving the
// workspace sees (the cloud co-signer prepares its session while the
// presignature's used mark commits), exactly one session gets the cloud
// co-signer's first envelope, and the other gets only an error: no
// envelope of a second online round ever leaves (I1).
func TestConcurrentPresignatureUse(t *testing.T) {
	e := serve(t, fixtureDir(t), clock.Real())
	n := e.fixtureSigner()
	for round := range len(n.presignIDs) {
		id := n.presignIDs[round]
		reqs := []*protocol.WsRequest{e.submitTx(n.creds.UserID, ""), e.submitTx(n.creds.UserID, "")}
		c, cancel := context.WithCancel(ctx(t))
		first := make([]error, len(reqs)) // nil: an envelope came first
		var wg sync.WaitGroup
		for i, r := range reqs {
			stream, err := n.c.Mpc(c)
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := stream.Send(&protocol.WsMpcClientMessage{Msg: &protocol.WsMpcClientMessage_Start{Start: &protocol.WsMpcStart{
					Kind: protocol.WsMpcKind_WS_MPC_KIND_SIGN, SessionId: client.SessionID(), PresignId: id.String(), RequestId: r.Id,
				}}})
				if err == nil {
					var msg *protocol.WsMpcServerMessage
					if msg, err = stream.Recv(); err == nil && msg.GetEnvelope() == nil {
						t.Errorf("round %d, request %d: first message %v is neither an envelope nor an error", round, i, msg)
					}
				}
				first[i] = err
			}()
		}
		wg.Wait()
		cancel() // the winner's node leaves without answering
		var envelopes int
		for i, err := range first {
			if err == nil {
				envelopes++
				continue
			}
			if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition {
				t.Errorf("round %d, request %d: %v, want FailedPrecondition (presignature already used)", round, i, err)
			}
		}
		if envelopes != 1 {
			t.Fatalf("round %d: %d sessions got an envelope, want exactly 1", round, envelopes)
		}
	}
}
