package node

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
)

// TestRefreshEndToEnd refreshes a paired user's key shares on a running
// node through the admin API: the record holds a new share of a new epoch,
// the public key stays, every presignature of the old share burns, and a
// transaction submitted afterwards is signed with the new share (the cloud
// co-signer switches to its staged share at the node's first session that
// names it) and verifies under the same key. A refresh that started from
// the old share is refused and changes nothing.
func TestRefreshEndToEnd(t *testing.T) {
	if raceEnabled {
		t.Skip("a refresh and an on-the-spot presign take minutes under the race detector")
	}
	f := fixtureNode(t)
	n, cfg, u, admin := f.n, f.cfg, f.u, f.admin
	ctx := ctxT(t, 3*time.Minute)
	sign := func(when string) {
		t.Helper()
		r, err := admin.SubmitTransaction(ctx, &protocol.WsSubmitTransactionRequest{UserId: u.Info.ID, Transaction: &protocol.WsTransaction{
			Asset: "ETH", Amount: "1", Source: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
			Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "0xabc"}, Amount: "1"}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		got := waitTerminal(t, admin, []string{r.GetId()}, 2*time.Minute)
		if s := got[r.GetId()]; s.GetState() != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED {
			t.Fatalf("%s: %v (%s), want signed", when, s.GetState(), s.GetReason())
		}
	}
	// A signature first, so that the node holds the old share in memory:
	// the refresh must replace it there too.
	sign("before the refresh")
	key := u.Info.ShareRecord
	before, _ := n.cluster.KeyRecord(key)
	live := n.cluster.FSM().Available(key)
	if len(live) == 0 || len(before.Epoch) == 0 {
		t.Fatalf("fixture: %d presignatures, epoch %x", len(live), before.Epoch)
	}

	// The schedule: the user is due an hour after its last refresh (the
	// fixture user has no pairing time, so it is due now), unless its last
	// attempt failed less than refreshRetry ago.
	hourly := RefreshConfig{Interval: time.Hour}
	id := userRecordID(u.Info.WorkspaceID, u.Info.ID)
	now := n.clock.Now()
	if due := n.refreshDue(hourly, now, nil); len(due) != 1 || due[0] != id {
		t.Fatalf("due before the refresh: %v, want [%s]", due, id)
	}
	if due := n.refreshDue(hourly, now, map[string]time.Time{id: now.Add(-time.Minute)}); len(due) != 0 {
		t.Fatalf("due a minute after a failed attempt: %v", due)
	}

	ac, err := NewAdminClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := ac.Refresh(ctx, u.Info.ID)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := n.cluster.KeyRecord(key)
	if bytes.Equal(after.Epoch, before.Epoch) || bytes.Equal(after.Sealed, before.Sealed) || after.RefreshedAt.IsZero() {
		t.Fatalf("key record after the refresh: epoch %x (was %x), refreshed at %v", after.Epoch, before.Epoch, after.RefreshedAt)
	}
	if rep.PublicKey != u.Info.PublicKey || rep.Epoch == rep.FromEpoch {
		t.Fatalf("report %+v", rep)
	}
	if due := n.refreshDue(hourly, after.RefreshedAt.Add(59*time.Minute), nil); len(due) != 0 {
		t.Fatalf("due 59 minutes after the refresh: %v", due)
	}
	if due := n.refreshDue(hourly, after.RefreshedAt.Add(time.Hour), nil); len(due) != 1 {
		t.Fatalf("due an hour after the refresh: %v", due)
	}
	for _, id := range live {
		if p, ok := n.cluster.Presignature(key, id); !ok || p.Status != cluster.PresignatureBurned {
			t.Errorf("presignature %s of the old share: %+v, want burned", id, p)
		}
	}

	sign("after the refresh")
	v, err := admin.Verify(ctx, &protocol.WsVerifyRequest{})
	if err != nil || len(v.GetProblems()) != 0 || v.GetSignaturesChecked() != 2 {
		t.Fatalf("verify %v %v", v, err)
	}

	err = n.cluster.RefreshKey(ctx, key, before.Epoch, []byte("another epoch"), before.Sealed)
	if !errors.Is(err, cluster.ErrStaleKey) {
		t.Fatalf("a refresh from the old share: %v, want ErrStaleKey", err)
	}
	if now, _ := n.cluster.KeyRecord(key); !bytes.Equal(now.Epoch, after.Epoch) {
		t.Fatal("the refused refresh changed the record")
	}
	if _, err := ac.Refresh(ctx, "nobody"); !errors.Is(err, cluster.ErrUnknownUser) {
		t.Fatalf("refresh of an unknown user: %v", err)
	}
}
