package store

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/request"
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t     *testing.T
	path  string
	clock *clock.Fake
	s     *Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, path: filepath.Join(t.TempDir(), "ws.db"), clock: clock.NewFake(epoch)}
	f.open()
	t.Cleanup(func() { f.s.Close() })
	if _, err := f.s.EnsureWorkspace("default", "Default", []string{"Default", "Treasury"}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) open() {
	f.t.Helper()
	cfg := DefaultConfig()
	cfg.Path = f.path
	cfg.Clock = f.clock
	cfg.Logger = slog.New(slog.NewTextHandler(tlog{f.t}, nil))
	s, err := New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.s = s
}

func (f *fixture) reopen() {
	f.t.Helper()
	if err := f.s.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.open()
}

type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(strings.TrimSpace(string(p))); return len(p), nil }

func grant(n byte, exp time.Time) Grant {
	var g Grant
	g.TokenID[0] = n
	g.ExpiresAt = exp
	return g
}

// activeUser creates and pairs a user; signers also get a key.
func (f *fixture) activeUser(role protocol.WsRole, n byte) *protocol.WsUser {
	f.t.Helper()
	u, err := f.s.CreateUser("default", "node", role, grant(n, epoch.Add(time.Hour)), ActorAdmin)
	if err != nil {
		f.t.Fatal(err)
	}
	u, err = f.s.Pair(Pairing{TokenID: grant(n, time.Time{}).TokenID, UserID: u.Id, ApprovalKey: make([]byte, 32)})
	if err != nil {
		f.t.Fatal(err)
	}
	if IsSigner(role) {
		key := &protocol.WsSigningKey{PublicKey: []byte{2, 1}, ChainCode: make([]byte, 32)}
		if u, err = f.s.CompleteKeygen(u.Id, key, map[string][]byte{"cloud-1": []byte("ct")}); err != nil {
			f.t.Fatal(err)
		}
	}
	if u.State != protocol.WsUserState_WS_USER_STATE_ACTIVE {
		f.t.Fatalf("user is %s", u.State)
	}
	return u
}

func tx() *protocol.WsTransaction {
	return &protocol.WsTransaction{
		Asset: "ETH", Amount: "1.5",
		Source:       &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
		Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "0xabc"}}},
	}
}

func configChange() *protocol.WsConfigChange {
	return &protocol.WsConfigChange{
		Type:    protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ENABLE_ONE_TIME_ADDRESS,
		Payload: &protocol.WsConfigChange_OneTimeAddress{OneTimeAddress: &protocol.WsOneTimeAddress{Enabled: true}},
	}
}

func TestTransactionLifecycle(t *testing.T) {
	f := newFixture(t)
	u := f.activeUser(protocol.WsRole_WS_ROLE_SIGNER, 1)

	changed := f.s.Changed(u.Id)
	r, err := f.s.Submit(Submission{UserID: u.Id, Actor: ActorAdmin, Transaction: tx()})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("submission did not wake the user's pollers")
	}
	if r.State != protocol.WsRequestState_WS_REQUEST_STATE_PENDING || len(r.GetTransaction().Digests) != 1 {
		t.Fatalf("request = %v", r)
	}
	// The submission named no destination amount: the only destination
	// carries the transaction's, so a handler's per-destination limits see
	// it.
	if got := r.GetTransaction().GetDestinations()[0].GetAmount(); got != "1.5" {
		t.Fatalf("destination amount %q, want 1.5", got)
	}
	open, err := f.s.OpenAfter(u.Id, 0, 10)
	if err != nil || len(open) != 1 || open[0].Id != r.Id {
		t.Fatalf("OpenAfter = %v, %v", open, err)
	}
	if open, _ := f.s.OpenAfter(u.Id, r.Seq, 10); len(open) != 0 {
		t.Fatal("cursor did not skip the delivered request")
	}

	var pid [32]byte
	pid[0] = 7
	if err := f.s.PutPresignature(u.Id, pid, map[string][]byte{"cloud-1": []byte("share")}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.PutPresignature(u.Id, pid, nil); !errors.Is(err, ErrPresignatureExists) {
		t.Fatalf("second Put: %v", err)
	}
	got, shares, err := f.s.StartSign(u.Id, r.Id, 0, pid)
	if err != nil {
		t.Fatal(err)
	}
	if string(shares["cloud-1"]) != "share" || got.State != protocol.WsRequestState_WS_REQUEST_STATE_CLAIMED {
		t.Fatalf("StartSign = %v, %v", got.State, shares)
	}
	if _, _, err := f.s.StartSign(u.Id, r.Id, 0, pid); !errors.Is(err, ErrPresignatureUsed) {
		t.Fatalf("second StartSign: %v", err)
	}
	if err := f.s.PutPresignature(u.Id, pid, nil); !errors.Is(err, ErrPresignatureUsed) {
		t.Fatalf("Put of a used ID: %v", err)
	}

	sig := make([]byte, 64)
	sig[0] = 1
	done, dup, err := f.s.RecordSignature(u.Id, r.Id, 0, Signed{Signature: sig, RecoveryID: 1, PublicKey: []byte{2, 1}, PresignID: "07"}, ActorUser(u.Id))
	if err != nil || dup || done.State != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED {
		t.Fatalf("RecordSignature = %v, %v, %v", done.GetState(), dup, err)
	}
	if s := done.Signatures[0]; s.RecoveryId == nil || s.GetRecoveryId() != 1 || string(s.GetPublicKey()) != "\x02\x01" || s.GetPresignId() != "07" {
		t.Fatalf("recorded signature %v", s)
	}
	other := make([]byte, 64)
	again, dup, err := f.s.RecordSignature(u.Id, r.Id, 0, Signed{Signature: other, PresignID: "08"}, ActorUser(u.Id))
	if err != nil || !dup || string(again.Signatures[0].Signature) != string(sig) || again.DuplicateCompletions != 1 {
		t.Fatalf("duplicate = %v, %v, %v", dup, err, again)
	}
	var other2 [32]byte
	if _, _, err := f.s.StartSign(u.Id, r.Id, 0, other2); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("StartSign on a signed request: %v", err)
	}
	if _, _, err := f.s.Reject(u.Id, r.Id, "too late"); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("Reject after signing: %v", err)
	}
	if open, _ := f.s.OpenAfter(u.Id, 0, 10); len(open) != 0 {
		t.Fatal("a signed request is still open")
	}
	st, err := f.s.Stats()
	if err != nil || st.DuplicateCompletions != 1 || st.Signatures != 1 || st.PresignaturesUsed != 1 || st.RequestsByState["signed"] != 1 {
		t.Fatalf("stats = %v, %v", st, err)
	}

	f.reopen()
	r2, err := f.s.Request(r.Id)
	if err != nil || r2.State != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || r2.DuplicateCompletions != 1 {
		t.Fatalf("after reopen: %v, %v", r2, err)
	}
	if _, _, err := f.s.StartSign(u.Id, r.Id, 0, pid); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("after reopen: %v", err)
	}
	audit, _, err := f.s.Audit(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range audit {
		actions = append(actions, e.Action)
	}
	for _, want := range []string{"user.create", "user.pair", "key.generate", "request.submit", "presignature.use", "request.sign", "request.duplicate"} {
		if !strings.Contains(strings.Join(actions, " "), want) {
			t.Errorf("audit log lacks %s: %v", want, actions)
		}
	}
}

func TestPresignatureUseSurvivesRestart(t *testing.T) {
	f := newFixture(t)
	u := f.activeUser(protocol.WsRole_WS_ROLE_SIGNER, 1)
	var p1, p2 [32]byte
	p1[0], p2[0] = 1, 2
	for _, p := range [][32]byte{p1, p2} {
		if err := f.s.PutPresignature(u.Id, p, map[string][]byte{"cloud-1": {1}}); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := f.s.Submit(Submission{UserID: u.Id, Transaction: tx()})
	if _, _, err := f.s.StartSign(u.Id, r.Id, 0, p1); err != nil {
		t.Fatal(err)
	}
	f.reopen()
	if _, _, err := f.s.StartSign(u.Id, r.Id, 0, p1); !errors.Is(err, ErrPresignatureUsed) {
		t.Fatalf("reuse after restart: %v", err)
	}
	var unknown [32]byte
	if _, _, err := f.s.StartSign(u.Id, r.Id, 0, unknown); !errors.Is(err, ErrPresignatureUnknown) {
		t.Fatalf("unknown: %v", err)
	}
	if _, _, err := f.s.StartSign(u.Id, r.Id, 1, p2); !errors.Is(err, ErrDigestIndex) {
		t.Fatalf("index: %v", err)
	}
	// A staged refresh changes nothing until it is activated; activating
	// it burns what is left.
	if err := f.s.StageRefresh(u.Id, u.SigningKey, []byte("epoch-1"), map[string][]byte{"cloud-1": []byte("new")}); err != nil {
		t.Fatal(err)
	}
	if ct, _ := f.s.CloudKeyShare(u.Id, "cloud-1"); string(ct) == "new" {
		t.Fatal("staging a refresh replaced the share")
	}
	if err := f.s.ActivateRefresh(u.Id, []byte("epoch-2")); !errors.Is(err, ErrUnknownEpoch) {
		t.Fatalf("activate an epoch never staged: %v", err)
	}
	if err := f.s.ActivateRefresh(u.Id, []byte("epoch-1")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.s.StartSign(u.Id, r.Id, 0, p2); !errors.Is(err, ErrPresignatureUsed) {
		t.Fatalf("burned presignature: %v", err)
	}
	if ct, _ := f.s.CloudKeyShare(u.Id, "cloud-1"); string(ct) != "new" {
		t.Fatal("activating the refresh did not replace the share")
	}
	if err := f.s.ActivateRefresh(u.Id, []byte("epoch-1")); !errors.Is(err, ErrUnknownEpoch) {
		t.Fatalf("activate twice: %v", err)
	}
	changedKey := &protocol.WsSigningKey{PublicKey: []byte{3}, ChainCode: make([]byte, 32)}
	if err := f.s.StageRefresh(u.Id, changedKey, []byte("epoch-3"), nil); !errors.Is(err, ErrKeyChanged) {
		t.Fatalf("refresh to another key: %v", err)
	}
}

// TestStagedRefreshes keeps up to MaxPendingRefreshes staged refreshes of
// a user and refuses another (one of them may be committed by the node)
// until the oldest is PendingRefreshTTL old; activating one drops the
// others, and so does a new key generation.
func TestStagedRefreshes(t *testing.T) {
	f := newFixture(t)
	u := f.activeUser(protocol.WsRole_WS_ROLE_SIGNER, 1)
	epoch := func(i int) []byte { return []byte(fmt.Sprintf("epoch-%d", i)) }
	stage := func(i int) error {
		return f.s.StageRefresh(u.Id, u.SigningKey, epoch(i), map[string][]byte{"cloud-1": epoch(i)})
	}
	for i := range MaxPendingRefreshes {
		if err := stage(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := stage(MaxPendingRefreshes); !errors.Is(err, ErrTooManyRefreshes) {
		t.Fatalf("staging one more than %d: %v, want ErrTooManyRefreshes", MaxPendingRefreshes, err)
	}
	if err := f.s.ActivateRefresh(u.Id, epoch(0)); err != nil {
		t.Fatalf("the oldest staged refresh after a refused one: %v", err)
	}
	if err := f.s.ActivateRefresh(u.Id, epoch(1)); !errors.Is(err, ErrUnknownEpoch) {
		t.Fatalf("another staged refresh after an activation: %v, want it dropped", err)
	}
	for i := range MaxPendingRefreshes {
		if err := stage(10 + i); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(PendingRefreshTTL)
	if err := stage(20); err != nil {
		t.Fatalf("staging after the oldest expired: %v", err)
	}
	if err := f.s.ActivateRefresh(u.Id, epoch(10)); !errors.Is(err, ErrUnknownEpoch) {
		t.Fatalf("the expired staged refresh: %v, want it dropped", err)
	}
	if err := f.s.ActivateRefresh(u.Id, epoch(11)); err != nil {
		t.Fatal(err)
	}
	if ct, _ := f.s.CloudKeyShare(u.Id, "cloud-1"); string(ct) != string(epoch(11)) {
		t.Fatalf("share %q after activating epoch 11", ct)
	}
}

func TestPairingTokens(t *testing.T) {
	f := newFixture(t)
	u, err := f.s.CreateUser("default", "n", protocol.WsRole_WS_ROLE_APPROVER, grant(1, epoch.Add(time.Hour)), ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	pair := func(n byte, user string) error {
		_, err := f.s.Pair(Pairing{TokenID: grant(n, time.Time{}).TokenID, UserID: user})
		return err
	}
	if err := pair(9, u.Id); !errors.Is(err, ErrUnknownToken) {
		t.Fatalf("unknown token: %v", err)
	}
	u2, _ := f.s.CreateUser("default", "m", protocol.WsRole_WS_ROLE_SIGNER, grant(2, epoch.Add(time.Hour)), ActorAdmin)
	if err := pair(2, u.Id); !errors.Is(err, ErrUnknownToken) {
		t.Fatalf("another user's token: %v", err)
	}
	// A newer token revokes the first one.
	if _, err := f.s.IssueToken(u.Id, grant(3, epoch.Add(time.Hour)), ActorAdmin); err != nil {
		t.Fatal(err)
	}
	if err := pair(1, u.Id); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	f.clock.Advance(time.Hour)
	if err := pair(3, u.Id); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := f.s.IssueToken(u.Id, grant(4, epoch.Add(3*time.Hour)), ActorAdmin); err != nil {
		t.Fatal(err)
	}
	if err := pair(4, u.Id); err != nil {
		t.Fatal(err)
	}
	if err := pair(4, u.Id); !errors.Is(err, ErrTokenUsed) {
		t.Fatalf("reused: %v", err)
	}
	if _, err := f.s.IssueToken(u.Id, grant(5, epoch.Add(3*time.Hour)), ActorAdmin); !errors.Is(err, ErrUserState) {
		t.Fatalf("token for an active user: %v", err)
	}
	// A signer waits for keygen, and cannot take requests until then.
	f.reopen()
	if err := pair(2, u2.Id); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("u2 token after the clock moved: %v", err)
	}
	if _, err := f.s.Submit(Submission{UserID: u2.Id, Transaction: tx()}); !errors.Is(err, ErrUserState) {
		t.Fatalf("submit to unpaired: %v", err)
	}
	if _, err := f.s.CompleteKeygen(u2.Id, &protocol.WsSigningKey{}, nil); !errors.Is(err, ErrUserState) {
		t.Fatalf("keygen before pairing: %v", err)
	}
	if _, err := f.s.CreateUser("nope", "x", protocol.WsRole_WS_ROLE_SIGNER, grant(6, epoch), ActorAdmin); !errors.Is(err, ErrUnknownWorkspace) {
		t.Fatalf("unknown workspace: %v", err)
	}
}

func TestSubmissionChecks(t *testing.T) {
	f := newFixture(t)
	signer := f.activeUser(protocol.WsRole_WS_ROLE_SIGNER, 1)
	approver := f.activeUser(protocol.WsRole_WS_ROLE_APPROVER, 2)

	if _, err := f.s.Submit(Submission{UserID: approver.Id, Transaction: tx()}); !errors.Is(err, ErrWrongRole) {
		t.Fatalf("tx to approver: %v", err)
	}
	if _, err := f.s.Submit(Submission{UserID: signer.Id, ConfigChange: configChange()}); !errors.Is(err, ErrWrongRole) {
		t.Fatalf("config change to signer: %v", err)
	}
	if _, err := f.s.Submit(Submission{UserID: "u-9999", Transaction: tx()}); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("unknown user: %v", err)
	}
	if _, err := f.s.Submit(Submission{UserID: signer.Id}); !errors.Is(err, request.ErrInvalid) {
		t.Fatalf("empty: %v", err)
	}
	bad := tx()
	bad.Amount = "lots"
	if _, err := f.s.Submit(Submission{UserID: signer.Id, Transaction: bad}); !errors.Is(err, request.ErrInvalid) {
		t.Fatalf("bad amount: %v", err)
	}
	noVault := tx()
	noVault.Source.Id = "7"
	if _, err := f.s.Submit(Submission{UserID: signer.Id, Transaction: noVault}); !errors.Is(err, ErrUnknownVault) {
		t.Fatalf("unknown vault: %v", err)
	}

	first, err := f.s.Submit(Submission{UserID: signer.Id, IdempotencyKey: "k1", Transaction: tx()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.s.Submit(Submission{UserID: signer.Id, IdempotencyKey: "k1", Transaction: tx()})
	var replay *ReplayError
	if !errors.As(err, &replay) || replay.Request.Id != first.Id || !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay: %v", err)
	}
	changed := tx()
	changed.Amount = "2"
	if _, err := f.s.Submit(Submission{UserID: signer.Id, IdempotencyKey: "k1", Transaction: changed}); !errors.Is(err, ErrIdempotencyConflict) {
		t.Fatalf("conflict: %v", err)
	}
	all, _, _ := f.s.List(ListFilter{})
	if len(all) != 1 {
		t.Fatalf("%d requests stored, want 1", len(all))
	}

	cc, err := f.s.Submit(Submission{UserID: approver.Id, ConfigChange: configChange()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.s.RecordSignature(approver.Id, cc.Id, 0, Signed{Signature: make([]byte, 64)}, ""); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("signature on config change: %v", err)
	}
	if _, _, err := f.s.RecordApproval(signer.Id, cc.Id, make([]byte, 64)); !errors.Is(err, ErrUnknownRequest) {
		t.Fatalf("approval by another user: %v", err)
	}
	if _, _, err := f.s.RecordApproval(signer.Id, first.Id, make([]byte, 64)); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("approval of a transaction: %v", err)
	}
	r, dup, err := f.s.RecordApproval(approver.Id, cc.Id, make([]byte, 64))
	if err != nil || dup || r.State != protocol.WsRequestState_WS_REQUEST_STATE_APPROVED {
		t.Fatalf("approve: %v %v %v", r, dup, err)
	}
	if _, dup, _ := f.s.RecordApproval(approver.Id, cc.Id, make([]byte, 64)); !dup {
		t.Fatal("second approval is not a duplicate")
	}
	rej, dup, err := f.s.Reject(signer.Id, first.Id, "policy: amount over limit")
	if err != nil || dup || rej.Reason != "policy: amount over limit" {
		t.Fatalf("reject: %v %v %v", rej, dup, err)
	}
	if _, dup, err := f.s.Reject(signer.Id, first.Id, "again"); err != nil || !dup {
		t.Fatalf("second reject: %v %v", dup, err)
	}
	if _, _, err := f.s.Fail(signer.Id, first.Id, "late"); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("fail after reject: %v", err)
	}
	if _, _, err := f.s.Fail(signer.Id, "r-000999", "x"); !errors.Is(err, ErrUnknownRequest) {
		t.Fatalf("unknown request: %v", err)
	}
	if _, _, err := f.s.Fail(signer.Id, "r-1", "x"); !errors.Is(err, ErrUnknownRequest) {
		t.Fatalf("malformed request ID: %v", err)
	}
	listed, _, _ := f.s.List(ListFilter{State: protocol.WsRequestState_WS_REQUEST_STATE_REJECTED})
	if len(listed) != 1 || listed[0].Id != first.Id {
		t.Fatalf("List by state = %v", listed)
	}
}

func TestExpiryAndDelivery(t *testing.T) {
	f := newFixture(t)
	u := f.activeUser(protocol.WsRole_WS_ROLE_SIGNER, 1)
	short, _ := f.s.Submit(Submission{UserID: u.Id, Transaction: tx(), TTL: time.Minute})
	long, _ := f.s.Submit(Submission{UserID: u.Id, Transaction: tx()})
	if err := f.s.MarkDelivered(u.Id, []uint64{short.Seq, long.Seq}); err != nil {
		t.Fatal(err)
	}
	if n, err := f.s.ExpireDue(); err != nil || n != 0 {
		t.Fatalf("ExpireDue = %d, %v", n, err)
	}
	f.clock.Advance(time.Minute)
	if n, err := f.s.ExpireDue(); err != nil || n != 1 {
		t.Fatalf("ExpireDue = %d, %v", n, err)
	}
	f.reopen()
	r, _ := f.s.Request(short.Id)
	if r.State != protocol.WsRequestState_WS_REQUEST_STATE_EXPIRED || r.Reason == "" {
		t.Fatalf("short = %v", r)
	}
	r, _ = f.s.Request(long.Id)
	if r.State != protocol.WsRequestState_WS_REQUEST_STATE_DELIVERED {
		t.Fatalf("long = %v", r.State)
	}
	if _, _, err := f.s.Fail(u.Id, short.Id, "x"); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("fail after expiry: %v", err)
	}
	f.s.Touch(u.Id)
	if err := f.s.FlushLastSeen(); err != nil {
		t.Fatal(err)
	}
	f.reopen()
	if got, _ := f.s.User(u.Id); got.LastSeenAt != f.clock.Now().UnixNano() {
		t.Fatalf("last seen = %d", got.LastSeenAt)
	}
}

// TestGroupCommitIsolatesFailures submits good and bad requests at once:
// the bad ones fail alone and every good one commits.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	f := newFixture(t)
	u := f.activeUser(protocol.WsRole_WS_ROLE_SIGNER, 1)
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := u.Id
			if i%4 == 0 {
				user = "u-9999"
			}
			_, errs[i] = f.s.Submit(Submission{UserID: user, Transaction: tx(), IdempotencyKey: fmt.Sprint(i)})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i%4 == 0) != errors.Is(err, ErrUnknownUser) || (i%4 != 0 && err != nil) {
			t.Errorf("submission %d: %v", i, err)
		}
	}
	open, _ := f.s.OpenAfter(u.Id, 0, 1000)
	if len(open) != n-n/4 {
		t.Fatalf("%d open requests, want %d", len(open), n-n/4)
	}
	for i := 1; i < len(open); i++ {
		if open[i].Seq <= open[i-1].Seq {
			t.Fatal("OpenAfter is not in seq order")
		}
	}
}

func TestClosedAndInUse(t *testing.T) {
	f := newFixture(t)
	cfg := DefaultConfig()
	cfg.Path = f.path
	cfg.OpenTimeout = 50 * time.Millisecond
	if _, err := New(cfg); !errors.Is(err, ErrInUse) {
		t.Fatalf("second open: %v", err)
	}
	if err := f.s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Submit(Submission{UserID: "u", Transaction: tx()}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	if _, err := f.s.Users(); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := f.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Validate(); err == nil || strings.Count(err.Error(), "\n") < 3 {
		t.Fatalf("Validate of the zero Config: %v", err)
	}
}

// TestKill9LosesNothing runs a child process that submits requests and
// prints each acknowledged ID, kills it with SIGKILL mid-stream, and checks
// that every acknowledged request is in the store.
func TestKill9LosesNothing(t *testing.T) {
	if os.Getenv("STORE_KILL_CHILD") != "" {
		t.Skip("child")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "ws.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.v")
	cmd.Env = append(os.Environ(), "STORE_KILL_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
			acked = append(acked, id)
			if len(acked) == 200 {
				break
			}
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if len(acked) < 200 {
		t.Fatalf("child acknowledged only %d submissions", len(acked))
	}
	cfg := DefaultConfig()
	cfg.Path = path
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range acked {
		if _, err := s.Request(id); err != nil {
			t.Errorf("acknowledged %s is lost: %v", id, err)
		}
	}
}

// TestKill9Child is the child of TestKill9LosesNothing.
func TestKill9Child(t *testing.T) {
	path := os.Getenv("STORE_KILL_CHILD")
	if path == "" {
		t.Skip("run by TestKill9LosesNothing")
	}
	cfg := DefaultConfig()
	cfg.Path = path
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureWorkspace("default", "Default", []string{"Default"}); err != nil {
		t.Fatal(err)
	}
	u, _ := s.CreateUser("default", "n", protocol.WsRole_WS_ROLE_SIGNER, grant(1, time.Now().Add(time.Hour)), ActorAdmin)
	if _, err := s.Pair(Pairing{TokenID: grant(1, time.Time{}).TokenID, UserID: u.Id}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompleteKeygen(u.Id, &protocol.WsSigningKey{PublicKey: []byte{2}}, nil); err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(os.Stdout)
	for range 100000 { // bounded; the parent kills it long before
		r, err := s.Submit(Submission{UserID: u.Id, Transaction: tx()})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "ACK %s\n", r.Id)
		w.Flush()
	}
}
