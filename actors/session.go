package actors

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
)

// Messages of the Session. Each result carries the incarnation that
// started the work, so that a restarted Session ignores its predecessor's.
type (
	loadDone struct {
		inc   int
		req   *protocol.WsRequest
		info  cluster.RequestInfo
		known bool
		err   error
	}
	// reserveDone ends the reserve step of a digest.
	reserveDone struct {
		inc   int
		index uint32
		acquired
	}
	// presigning says the reserve step of a digest found the pool empty
	// and presigns on the spot.
	presigning struct {
		inc   int
		index uint32
	}
	signDone struct {
		inc   int
		index uint32
		out   signOutcome
		err   error
	}
	// submitDone ends a workspace report: approval, rejection, failure or
	// a signature submitted after a broken relay; step says which.
	// recorded says the handler's decision committed first.
	submitDone struct {
		inc      int
		step     stepKind
		took     time.Duration
		err      error
		recorded bool
	}
	completeDone struct {
		inc int
		err error
		// recorded says the handler's decision committed first.
		recorded bool
	}
	// reload re-reads the request after a failed step.
	reload struct{ inc int }
	// completeRetry proposes Complete again.
	completeRetry struct {
		inc     int
		outcome cluster.Outcome
		reason  string
	}
)

// sessionShared is what a Session's incarnations share: the supervisor
// keeps it across restarts (the actor itself is created anew).
type sessionShared struct {
	request  string
	user     *userState
	callback *actor.PID

	incarnation int
	// prev tracks the goroutines of the latest incarnation; the next one
	// waits for them before it reads the recorded state, so two
	// incarnations never act on a request at once.
	prev *sync.WaitGroup
	// approved remembers the handler's APPROVE across restarts on this
	// node, so a crash does not ask the handler twice: it is the digest of
	// the content the handler approved (contentDigest), nil until then. A
	// request whose content no longer matches it is never signed.
	approved []byte
	// decision is the handler's latest answer until the cluster records it
	// (with the first Reserve, or a Decide), then nil.
	decision *cluster.Decision
	started  time.Time
	// failures counts failed steps; onlineFailures failed online rounds;
	// presigns on-demand presigns.
	failures, onlineFailures, presigns int
	outcome                            cluster.Outcome
	reason                             string
}

// session is Session(R): it carries one request this node owns to its
// terminal outcome, following DESIGN's path of one transaction.
//
//  1. load: read R from the workspace and the FSM. A request the FSM shows
//     completed, or owned by another node, ends the Session; one the
//     workspace already finished is just Completed.
//  2. callback: ask Callback(U); APPROVE goes on, REJECT is final, an error
//     fails the request (I5: nothing is signed or approved without APPROVE).
//  3. transaction: for each digest not yet signed, Reserve a presignature
//     through raft (I6: the online round starts only after the Reserve
//     committed), then run the online round on the worker pool; the
//     workspace combines, verifies and records. With the pool empty it
//     presigns on demand (the slow path) and reserves that one.
//     config change: sign the approval digest with the approval key and
//     submit it.
//  4. Complete{R, outcome} through raft.
//
// Every terminal outcome is reported to the workspace and recorded with
// Complete (I3). A step that fails for its whole budget because the
// workspace cannot be reached does not fail the request: the Session ends
// and a later one tries again (await). A decision made (a rejection, a
// failure) is reported again after a reload, never asked again; so is a
// REJECT or IGNORE the cluster recorded for the same content, by this node
// before a restart or by another before a hand-back. A crashed Session is restarted by its supervisor and
// starts again at step 1: presignatures reserved by the crashed
// incarnation are never reused (a fresh Reserve only takes available ones,
// and Complete marks them all used), and a digest the workspace already
// recorded is not signed again (I1, I2).
type session struct {
	sys    *System
	sh     *sessionShared
	inc    int
	ctx    context.Context
	cancel context.CancelFunc
	wg     *sync.WaitGroup
	req    *protocol.WsRequest
	// asked is the content digest of the callback request in flight.
	asked []byte
	step  step
	at    time.Time
}

func newSession(s *System, sh *sessionShared) *session { return &session{sys: s, sh: sh} }

// Receive implements actor.Actor.
func (s *session) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.start(ctx)
	case *actor.Restarting, *actor.Stopping:
		if s.cancel != nil {
			s.cancel()
		}
	case *actor.Stopped:
	case *loadDone:
		if m.inc == s.inc {
			s.loaded(ctx, m)
		}
	case *reload:
		if m.inc == s.inc {
			s.load(ctx, nil)
		}
	case *callbackAnswer:
		if s.step.kind == stepCallback && m.request == s.sh.request {
			s.answered(ctx, m)
		}
	case *reserveDone:
		if m.inc == s.inc {
			s.reserved(ctx, m)
		}
	case *presigning:
		if m.inc == s.inc && s.step == (step{stepReserve, m.index}) {
			s.setStep(step{stepPresign, m.index})
		}
	case *signDone:
		if m.inc == s.inc {
			s.signed(ctx, m)
		}
	case *submitDone:
		if m.inc == s.inc {
			s.submitted(ctx, m)
		}
	case *completeDone:
		if m.inc == s.inc {
			s.completed(ctx, m)
		}
	case *completeRetry:
		if m.inc == s.inc {
			s.complete(ctx, m.outcome, m.reason)
		}
	}
}

func (s *session) start(ctx actor.Context) {
	sh := s.sh
	sh.incarnation++
	s.inc = sh.incarnation
	s.ctx, s.cancel = context.WithCancel(s.sys.ctx)
	prev := sh.prev
	s.wg = &sync.WaitGroup{}
	sh.prev = s.wg
	if sh.started.IsZero() {
		sh.started = s.sys.cfg.Clock.Now()
	}
	if s.inc > 1 {
		s.sys.log.Warn("session restarted, resuming from the recorded state", "request", sh.request, "incarnation", s.inc)
	}
	s.load(ctx, prev)
}

// setStep records the step for Status and for stage latencies.
func (s *session) setStep(st step) {
	s.step = st
	s.at = s.sys.cfg.Clock.Now()
	s.sys.setSession(SessionStatus{Request: s.sh.request, User: s.sh.user.ID, Step: st.String(), Since: s.at, Incarnation: s.inc})
}

// fault calls the test hook at a stage boundary, inside Receive.
func (s *session) fault(st Stage) {
	if h := s.sys.cfg.FaultHook; h != nil {
		h(s.sh.request, st)
	}
}

// run runs f on a tracked goroutine and sends its result to the Session.
func (s *session) run(ctx actor.Context, f func(ctx context.Context) any) {
	self, root, sctx := ctx.Self(), s.sys.root, s.ctx
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		root.Send(self, f(sctx))
	}()
}

// runOn runs f on a worker pool; a full pool retries after RetryDelay.
func (s *session) runOn(ctx actor.Context, w *workers, f func(ctx context.Context) any) {
	self, root, sctx := ctx.Self(), s.sys.root, s.ctx
	s.wg.Add(1)
	err := w.Submit(func(context.Context) {
		defer s.wg.Done()
		root.Send(self, f(sctx))
	})
	if err != nil {
		s.wg.Done()
		s.stepFailed(ctx, err)
	}
}

// call bounds one workspace call or proposal.
func (s *session) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.sys.cfg.CallTimeout)
}

func (s *session) load(ctx actor.Context, prev *sync.WaitGroup) {
	s.setStep(step{kind: stepLoad})
	inc, r, ws, cl := s.inc, s.sh.request, s.sh.user.Workspace, s.sys.cfg.Cluster
	s.run(ctx, func(c context.Context) any {
		if prev != nil {
			prev.Wait()
		}
		cc, cancel := s.call(c)
		defer cancel()
		req, err := ws.GetRequest(cc, &protocol.WsGetRequestRequest{RequestId: r})
		info, known := cl.Request(r)
		return &loadDone{inc: inc, req: req, info: info, known: known, err: err}
	})
}

func (s *session) loaded(ctx actor.Context, m *loadDone) {
	switch {
	case m.known && m.info.Status == cluster.StatusCompleted:
		s.end(ctx, false) // recorded already (by a predecessor)
		return
	case !m.known || m.info.Status != cluster.StatusClaimed || m.info.Owner != s.sys.self:
		s.lost(ctx, "the FSM does not show this node as the owner")
		return
	case m.err != nil:
		s.stepFailed(ctx, fmt.Errorf("read request: %w", m.err))
		return
	}
	// A record of another request or user must not end this one.
	if err := checkIdentity(m.req, s.sh.request, s.sh.user.ID); err != nil {
		s.fail(ctx, err.Error())
		return
	}
	s.req = m.req
	switch m.req.GetState() {
	case protocol.WsRequestState_WS_REQUEST_STATE_SIGNED:
		s.complete(ctx, cluster.OutcomeSigned, "")
		return
	case protocol.WsRequestState_WS_REQUEST_STATE_APPROVED:
		s.complete(ctx, cluster.OutcomeApproved, "")
		return
	case protocol.WsRequestState_WS_REQUEST_STATE_REJECTED:
		s.complete(ctx, cluster.OutcomeRejected, m.req.GetReason())
		return
	case protocol.WsRequestState_WS_REQUEST_STATE_IGNORED:
		s.complete(ctx, cluster.OutcomeIgnored, m.req.GetReason())
		return
	case protocol.WsRequestState_WS_REQUEST_STATE_FAILED, protocol.WsRequestState_WS_REQUEST_STATE_EXPIRED:
		reason := m.req.GetReason()
		if reason == "" {
			reason = "request " + m.req.GetState().String()
		}
		s.complete(ctx, cluster.OutcomeFailed, reason)
		return
	}
	// Nothing garbled reaches the handler, a Reserve or a signing key.
	if err := checkBody(m.req); err != nil {
		s.fail(ctx, err.Error())
		return
	}
	s.fault(StageLoaded)
	if kind, ok := decided(s.sh.outcome); ok {
		// Decided before this reload, when its report failed: it stands.
		s.report(ctx, kind, s.sh.outcome, s.sh.reason)
		return
	}
	if kind, outcome, reason, ok := recordedRefusal(m); ok {
		// Recorded by this node before a restart, or by another before a
		// hand-back: it stands, and the handler is not asked again.
		s.report(ctx, kind, outcome, reason)
		return
	}
	if s.sh.approved != nil {
		if err := s.stillApproved(m.req); err != nil {
			s.fail(ctx, err.Error())
			return
		}
		s.proceed(ctx)
		return
	}
	s.ask(ctx)
}

// recordedRefusal returns the report of a REJECT (or, for a config
// change, an IGNORE) that the cluster recorded for exactly the content the
// workspace shows now.
func recordedRefusal(m *loadDone) (stepKind, cluster.Outcome, string, bool) {
	d := m.info.Decision
	if d == nil {
		return 0, 0, "", false
	}
	kind, outcome, reason := stepReject, cluster.OutcomeRejected, d.Reason
	switch {
	case d.Action == callback.ActionReject.String():
		if reason == "" {
			reason = "rejected by the callback handler"
		}
	case d.Action == callback.ActionIgnore.String() && m.req.GetKind() == protocol.WsRequestKind_WS_REQUEST_KIND_CONFIG_CHANGE:
		kind, outcome = stepIgnore, cluster.OutcomeIgnored
	default:
		return 0, 0, "", false
	}
	req, err := callbackRequest(m.req)
	if err != nil {
		return 0, 0, "", false
	}
	if digest, err := contentDigest(req); err != nil || !bytes.Equal(digest, d.ContentDigest) {
		return 0, 0, "", false
	}
	return kind, outcome, reason, true
}

// decided returns the report step of an outcome the Session decided on
// its own or from the handler's answer (a rejection, an ignore, a failure),
// which a reload must report again rather than decide anew.
func decided(o cluster.Outcome) (stepKind, bool) {
	switch o {
	case cluster.OutcomeRejected:
		return stepReject, true
	case cluster.OutcomeIgnored:
		return stepIgnore, true
	case cluster.OutcomeFailed:
		return stepFail, true
	}
	return 0, false
}

func (s *session) ask(ctx actor.Context) {
	req, err := callbackRequest(s.req)
	if err != nil {
		s.fail(ctx, err.Error())
		return
	}
	if s.asked, err = contentDigest(req); err != nil {
		s.fail(ctx, err.Error())
		return
	}
	s.setStep(step{kind: stepCallback})
	ctx.Send(s.sh.callback, &askCallback{request: s.sh.request, req: req, replyTo: ctx.Self()})
}

// contentDigest is the SHA-256 of what the callback handler is asked
// about: an APPROVE covers exactly that content.
func contentDigest(req callback.Request) ([]byte, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %v", callback.ErrInvalidRequest, err)
	}
	d := sha256.Sum256(b)
	return d[:], nil
}

// stillApproved checks that r says what the handler approved. A workspace
// that changes a request's digests or payload under the same id after the
// APPROVE gets nothing signed or approved for it (I5).
func (s *session) stillApproved(r *protocol.WsRequest) error {
	req, err := callbackRequest(r)
	if err != nil {
		return err
	}
	d, err := contentDigest(req)
	if err != nil {
		return err
	}
	if !bytes.Equal(d, s.sh.approved) {
		return ErrContentChanged
	}
	return nil
}

func (s *session) answered(ctx actor.Context, m *callbackAnswer) {
	s.sys.metrics.stage(stageCallback, s.sys.cfg.Clock.Now().Sub(s.at))
	switch {
	case errors.Is(m.err, errCallbackRestarted):
		s.ask(ctx)
		return
	case m.err != nil:
		s.fail(ctx, fmt.Sprintf("callback handler gave no decision: %v", m.err))
		return
	}
	s.sh.decision = &cluster.Decision{
		Action: m.decision.Action.String(), Reason: cut(m.decision.RejectionReason, maxDecisionReason), HandlerKey: m.decision.KeyID,
		ContentDigest: s.asked, Detail: requestDetail(s.req),
	}
	switch {
	case m.decision.Approved():
		s.sh.approved = s.asked
		s.fault(StageApproved)
		s.proceed(ctx)
	case m.decision.Action == callback.ActionReject:
		reason := m.decision.RejectionReason
		if reason == "" {
			reason = "rejected by the callback handler"
		}
		s.report(ctx, stepReject, cluster.OutcomeRejected, reason)
	case m.decision.Action == callback.ActionIgnore && s.req.GetKind() == protocol.WsRequestKind_WS_REQUEST_KIND_CONFIG_CHANGE:
		// Neither an approval nor a rejection: the workspace's other
		// approvers decide.
		s.report(ctx, stepIgnore, cluster.OutcomeIgnored, m.decision.RejectionReason)
	default:
		s.fail(ctx, fmt.Sprintf("callback handler answered %s", m.decision.Action))
	}
}

// halted ends the Session, leaving its request claimed, when the System
// halted: no step that reserves, signs or approves starts after an
// invariant broke.
func (s *session) halted(ctx actor.Context) bool {
	why, ok := s.sys.Halted()
	if ok {
		s.sys.log.Warn("signing halted, leaving the request claimed", "request", s.sh.request, "why", why)
		s.end(ctx, true)
	}
	return ok
}

func (s *session) proceed(ctx actor.Context) {
	if s.halted(ctx) {
		return
	}
	u := s.sh.user
	switch s.req.GetKind() {
	case protocol.WsRequestKind_WS_REQUEST_KIND_TRANSACTION:
		if u.SigningKey == nil {
			s.fail(ctx, "the API user has no signing key on this cluster")
			return
		}
		s.nextDigest(ctx)
	case protocol.WsRequestKind_WS_REQUEST_KIND_CONFIG_CHANGE:
		s.approve(ctx)
	default:
		s.fail(ctx, "unknown request kind")
	}
}

// nextDigest signs the first digest the workspace has not recorded.
func (s *session) nextDigest(ctx actor.Context) {
	signed := map[uint32]bool{}
	for _, sig := range s.req.GetSignatures() {
		signed[sig.GetIndex()] = true
	}
	for i := range s.req.GetTransaction().GetDigests() {
		if !signed[uint32(i)] {
			s.reserve(ctx, uint32(i))
			return
		}
	}
	s.complete(ctx, cluster.OutcomeSigned, "")
}

// reserve gets digest index a presignature through raft (I6: the online
// round starts only after the Reserve committed): one from the key's pool
// while it holds any, else whichever comes first of a presignature entering
// the pool and an on-the-spot presign on a slow-path slot (System.acquire).
// It never waits for a refill job.
func (s *session) reserve(ctx actor.Context, index uint32) {
	if s.halted(ctx) {
		return
	}
	s.setStep(step{stepReserve, index})
	inc, r, u, sys, self := s.inc, s.sh.request, s.sh.user, s.sys, ctx.Self()
	budget := s.sys.cfg.OnlineAttempts - s.sh.presigns
	d := s.sh.decision
	s.run(ctx, func(c context.Context) any {
		if d != nil {
			// The APPROVE rides on the Reserve: no commit of its own.
			c = cluster.ContextWithDecision(c, *d)
		}
		a := sys.acquire(c, r, u, budget, func() { sys.root.Send(self, &presigning{inc: inc, index: index}) })
		return &reserveDone{inc: inc, index: index, acquired: a}
	})
}

func (s *session) reserved(ctx actor.Context, m *reserveDone) {
	s.sh.presigns += m.presigns
	if m.presigns > 0 && m.err == nil {
		s.sys.metrics.stage(stagePresignSlow, m.presignTook)
	}
	switch {
	case errors.Is(m.err, ErrLostOwnership):
		s.lost(ctx, m.err.Error())
	case m.err != nil:
		s.stepFailed(ctx, fmt.Errorf("reserve: %w", m.err))
	case m.empty:
		s.fail(ctx, ErrNoPresignature.Error())
	default:
		s.sh.decision = nil
		s.sys.metrics.stage(stageReserveCommit, m.took)
		s.fault(StageReserved)
		s.sign(ctx, m.index, m.ref)
	}
}

func (s *session) sign(ctx actor.Context, index uint32, ref cluster.PresignatureRef) {
	if s.halted(ctx) {
		return
	}
	s.setStep(step{stepSign, index})
	inc, u, req := s.inc, s.sh.user, s.req
	s.runOn(ctx, s.sys.online, func(c context.Context) any {
		out, err := s.sys.onlineRound(c, u, req, index, ref)
		return &signDone{inc: inc, index: index, out: out, err: err}
	})
}

func (s *session) signed(ctx actor.Context, m *signDone) {
	var inv *InvariantError
	if errors.As(m.err, &inv) {
		panic(inv) // the supervisor halts the System
	}
	if errors.Is(m.err, ErrLostOwnership) {
		s.lost(ctx, m.err.Error())
		return
	}
	if errors.Is(m.err, errRefreshBurned) {
		s.sys.log.Info("a key refresh burned the reserved presignature, reserving another", "request", s.sh.request, "digest", m.index)
		s.nextDigest(ctx)
		return
	}
	if m.err != nil {
		s.sh.onlineFailures++
		s.sys.log.Warn("online round failed", "request", s.sh.request, "digest", m.index, "err", m.err)
		if m.out.sig != nil {
			s.submitSignature(ctx, m.index, m.out.sig)
			return
		}
		if s.sh.onlineFailures >= s.sys.cfg.OnlineAttempts {
			s.fail(ctx, fmt.Sprintf("online round failed %d times: %v", s.sh.onlineFailures, m.err))
			return
		}
		s.sys.later(s.sys.retryDelay(s.sh.onlineFailures), ctx.Self(), &reload{inc: s.inc})
		return
	}
	s.sys.metrics.stage(stageOnlineRound, m.out.online)
	s.sys.metrics.stage(stageVerification, m.out.verify)
	if r := m.out.res.GetRequest(); r != nil {
		if err := checkRequest(r, s.sh.request, s.sh.user.ID); err != nil {
			s.fail(ctx, err.Error())
			return
		}
		if err := s.stillApproved(r); err != nil {
			s.fail(ctx, err.Error())
			return
		}
		s.req = r
	}
	s.fault(StageSigned)
	s.nextDigest(ctx)
}

// submitSignature completes a digest whose relay broke after the node's
// session finished; the workspace verifies it and answers a duplicate
// idempotently. Then the request is read again.
func (s *session) submitSignature(ctx actor.Context, index uint32, sig []byte) {
	s.setStep(step{stepSubmitSignature, index})
	inc, r, ws := s.inc, s.sh.request, s.sh.user.Workspace
	s.run(ctx, func(c context.Context) any {
		cc, cancel := s.call(c)
		defer cancel()
		_, err := ws.SubmitSignature(cc, &protocol.WsSubmitSignatureRequest{RequestId: r, DigestIndex: index, Signature: sig})
		return &submitDone{inc: inc, step: stepSubmitSignature, err: err}
	})
}

func (s *session) approve(ctx actor.Context) {
	s.setStep(step{kind: stepApprove})
	inc, u, req, clock, cl, dec := s.inc, s.sh.user, s.req, s.sys.cfg.Clock, s.sys.cfg.Cluster, s.sh.decision
	s.run(ctx, func(c context.Context) any {
		t0 := clock.Now()
		key, err := s.sys.approvalKey(u)
		if err != nil {
			return &submitDone{inc: inc, step: stepApprove, err: err}
		}
		// I6: approve only after a commit proves this node still owns the
		// request, as a Reserve does before a signature. The handler's
		// APPROVE, when not recorded yet, is that commit.
		d, err := protocol.ApprovalDigest(req)
		if err != nil {
			return &submitDone{inc: inc, step: stepApprove, err: err}
		}
		cc, cancel := s.call(c)
		defer cancel()
		if dec != nil {
			err = cl.Decide(cc, req.GetId(), *dec)
		} else {
			err = cl.Confirm(cc, req.GetId())
		}
		if err != nil {
			return &submitDone{inc: inc, step: stepApprove, err: lostOwnership(err)}
		}
		_, err = u.Workspace.SubmitApproval(cc, &protocol.WsSubmitApprovalRequest{RequestId: req.GetId(), Signature: ed25519.Sign(key, d[:])})
		return &submitDone{inc: inc, step: stepApprove, took: clock.Now().Sub(t0), err: err, recorded: dec != nil}
	})
}

// report tells the workspace of a rejection (stepReject), an ignored config
// change (stepIgnore) or a failure (stepFail), then Completes with outcome.
func (s *session) report(ctx actor.Context, kind stepKind, outcome cluster.Outcome, reason string) {
	s.sh.outcome, s.sh.reason = outcome, reason
	s.setStep(step{kind: kind})
	// The handler's answer not recorded yet: a rejection or an ignore, or
	// an APPROVE no Reserve carried before the request failed.
	inc, r, ws, cl, dec := s.inc, s.sh.request, s.sh.user.Workspace, s.sys.cfg.Cluster, s.sh.decision
	s.run(ctx, func(c context.Context) any {
		cc, cancel := s.call(c)
		defer cancel()
		var err error
		if dec != nil {
			// The handler's answer enters the audit log before the
			// workspace hears of it.
			if err := cl.Decide(cc, r, *dec); err != nil {
				return &submitDone{inc: inc, step: kind, err: lostOwnership(err)}
			}
		}
		switch kind {
		case stepReject:
			_, err = ws.RejectRequest(cc, &protocol.WsRejectRequest{RequestId: r, Reason: reason})
		case stepIgnore:
			_, err = ws.IgnoreRequest(cc, &protocol.WsIgnoreRequest{RequestId: r, Reason: reason})
		default:
			_, err = ws.FailRequest(cc, &protocol.WsFailRequest{RequestId: r, Reason: reason})
		}
		return &submitDone{inc: inc, step: kind, err: err, recorded: dec != nil}
	})
}

// fail fails the request with a reason (never a secret).
func (s *session) fail(ctx actor.Context, reason string) {
	s.sys.log.Warn("request failed", "request", s.sh.request, "reason", reason)
	s.report(ctx, stepFail, cluster.OutcomeFailed, reason)
}

func (s *session) submitted(ctx actor.Context, m *submitDone) {
	if m.recorded {
		s.sh.decision = nil
	}
	if m.err != nil {
		if errors.Is(m.err, ErrLostOwnership) {
			s.lost(ctx, m.err.Error())
			return
		}
		if errors.Is(m.err, ErrKeyRecord) {
			s.fail(ctx, m.err.Error())
			return
		}
		if m.step == stepFail && s.sh.failures >= s.sys.cfg.StepRetries {
			if unreachable(m.err) {
				s.await(ctx, m.err)
				return
			}
			// The workspace does not take the failure; record it anyway.
			s.complete(ctx, s.sh.outcome, s.sh.reason)
			return
		}
		// A reload sees whether the workspace finished the request anyway.
		s.stepFailed(ctx, fmt.Errorf("%s: %w", m.step, m.err))
		return
	}
	switch m.step {
	case stepSubmitSignature:
		s.load(ctx, nil)
	case stepApprove:
		s.sys.metrics.stage(stageApproval, m.took)
		s.fault(StageSubmitted)
		s.complete(ctx, cluster.OutcomeApproved, "")
	default:
		s.fault(StageSubmitted)
		s.complete(ctx, s.sh.outcome, s.sh.reason)
	}
}

// maxReason bounds a reason recorded in the FSM.
const maxReason = 256

func (s *session) complete(ctx actor.Context, outcome cluster.Outcome, reason string) {
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	s.sh.outcome, s.sh.reason = outcome, reason
	s.setStep(step{kind: stepComplete})
	inc, r, cl, dec := s.inc, s.sh.request, s.sys.cfg.Cluster, s.sh.decision
	s.run(ctx, func(c context.Context) any {
		cc, cancel := s.call(c)
		defer cancel()
		if dec != nil {
			// An APPROVE no Reserve carried (the workspace had every
			// digest signed already): the audit log still gets it.
			if err := cl.Decide(cc, r, *dec); err != nil {
				return &completeDone{inc: inc, err: err}
			}
		}
		return &completeDone{inc: inc, err: cl.Complete(cc, r, outcome, reason), recorded: dec != nil}
	})
}

func (s *session) completed(ctx actor.Context, m *completeDone) {
	if m.recorded {
		s.sh.decision = nil
	}
	switch {
	case m.err == nil:
		s.sys.metrics.Requests.WithLabelValues(s.sh.outcome.String()).Inc()
		s.sys.metrics.stage(stageTotal, s.sys.cfg.Clock.Now().Sub(s.sh.started))
		s.sys.log.Info("request completed", "request", s.sh.request, "outcome", s.sh.outcome.String(), "reason", s.sh.reason)
		s.end(ctx, false)
	case errors.Is(m.err, cluster.ErrCompleted):
		s.end(ctx, false)
	case errors.Is(m.err, cluster.ErrNotOwner):
		s.lost(ctx, m.err.Error())
	default:
		s.sh.failures++
		if s.sh.failures > s.sys.cfg.StepRetries+s.sys.cfg.StepRetries {
			// No quorum for this long: leave the request claimed; it
			// resumes when the node restarts, or another node takes it
			// after a Release.
			s.sys.log.Error("cannot record the outcome, leaving the request claimed", "request", s.sh.request, "err", m.err)
			s.end(ctx, true)
			return
		}
		o, reason := s.sh.outcome, s.sh.reason
		s.sys.log.Warn("complete failed, retrying", "request", s.sh.request, "err", m.err)
		s.sys.later(s.sys.retryDelay(s.sh.failures), ctx.Self(), &completeRetry{inc: s.inc, outcome: o, reason: reason})
	}
}

// stepFailed retries a failed step by reading the request again after a
// backoff (retryDelay), and fails the request once the step budget is
// spent.
func (s *session) stepFailed(ctx actor.Context, err error) {
	s.sh.failures++
	s.sys.log.Warn("session step failed", "request", s.sh.request, "step", s.step.String(), "failures", s.sh.failures, "err", err)
	if s.sh.failures > s.sys.cfg.StepRetries {
		if unreachable(err) {
			s.await(ctx, err)
			return
		}
		if s.step.kind == stepFail {
			s.complete(ctx, s.sh.outcome, s.sh.reason)
			return
		}
		s.fail(ctx, fmt.Sprintf("%s: %v", s.step, err))
		return
	}
	s.sys.later(s.sys.retryDelay(s.sh.failures), ctx.Self(), &reload{inc: s.inc})
}

// unreachable reports whether err is a workspace call's that never got an
// answer (a broken or silent connection, or the call's timeout), as
// opposed to the workspace's answer or a cluster error.
func unreachable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// await ends the Session, leaving its request claimed, once a step has
// failed for its whole budget because the workspace cannot be reached:
// failing the request would record an outcome the workspace never heard of
// and leave the request open there, with no node to finish it. The
// coordinator starts a Session for it again (ResyncInterval), which goes
// on from what is recorded; a node cut off from the workspace altogether
// hands its requests back (the Poller's watch).
func (s *session) await(ctx actor.Context, err error) {
	s.sys.log.Warn("workspace unreachable, leaving the request claimed to try again later", "request", s.sh.request, "step", s.step.String(), "err", err)
	s.end(ctx, true)
}

// lost ends a Session whose request this node no longer owns: another node
// finishes it.
func (s *session) lost(ctx actor.Context, why string) {
	s.sys.log.Warn("request no longer owned by this node", "request", s.sh.request, "why", why)
	s.end(ctx, true)
}

// end tells the supervisor the Session is finished; the supervisor stops
// it (so that it knows the stop was not a give-up: protoactor delivers the
// Terminated system message ahead of user messages).
func (s *session) end(ctx actor.Context, lost bool) {
	s.step = step{kind: stepDone}
	ctx.Send(ctx.Parent(), &sessionDone{request: s.sh.request, lost: lost})
}
