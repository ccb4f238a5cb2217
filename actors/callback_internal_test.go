package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/clock"
)

// scriptDecider answers each Ask with the next entry of its script, the
// last one repeating.
type scriptDecider struct {
	mu     sync.Mutex
	script []attemptResult
	asks   int
}

type attemptResult struct {
	d   callback.Decision
	err error
}

func (s *scriptDecider) Ask(_ context.Context, req callback.Request) (callback.Decision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.script[min(s.asks, len(s.script)-1)]
	s.asks++
	if r.err == nil {
		r.d.RequestID = req.ID()
	}
	return r.d, r.err
}

// logRecord is one log line a logRecorder kept.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]any
}

// logRecorder is a slog.Handler that keeps every record, for tests that
// check what a human reading the log would see.
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	attrs := map[string]any{}
	rec.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.Any()
		return true
	})
	r.mu.Lock()
	r.records = append(r.records, logRecord{level: rec.Level, msg: rec.Message, attrs: attrs})
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

func (r *logRecorder) all() []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]logRecord(nil), r.records...)
}

// callbackHarness runs one Callback actor outside a node: a System with
// only what the actor uses, a fake clock and a recorded log.
type callbackHarness struct {
	sys     *System
	clock   *clock.Fake
	log     *logRecorder
	pid     *actor.PID
	replyTo *actor.PID
	answers chan *callbackAnswer
}

func newCallbackHarness(t *testing.T, d Decider, retry callback.Backoff) *callbackHarness {
	t.Helper()
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &callbackHarness{clock: clock.NewFake(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)), log: &logRecorder{}, answers: make(chan *callbackAnswer, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	quiet := slog.New(slog.DiscardHandler)
	h.sys = &System{cfg: Config{Clock: h.clock}, log: slog.New(h.log), metrics: m, ctx: ctx, cancel: cancel}
	h.sys.as = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	h.sys.root = h.sys.as.Root
	u := &userState{User: User{ID: "u-1", Decider: d, Retry: retry}}
	h.pid = h.sys.root.Spawn(actor.PropsFromProducer(func() actor.Actor { return newCallbackActor(h.sys, u) }))
	h.replyTo = h.sys.root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if a, ok := c.Message().(*callbackAnswer); ok {
			h.answers <- a
		}
	}))
	t.Cleanup(func() {
		cancel()
		h.sys.wg.Wait()
		h.sys.as.Shutdown()
	})
	return h
}

// ask asks about request id and, playing the part of time, lets each of
// the backoffs the actor schedules pass, until the final answer.
func (h *callbackHarness) ask(t *testing.T, id string, backoff time.Duration) *callbackAnswer {
	t.Helper()
	h.sys.root.Send(h.pid, &askCallback{request: id, req: &callback.TxRequest{RequestID: id}, replyTo: h.replyTo})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		waiting := make(chan error, 1)
		go func() { waiting <- h.clock.WaitForTimer(ctx, backoff) }()
		select {
		case a := <-h.answers:
			return a
		case err := <-waiting:
			if err != nil {
				t.Fatalf("no answer and no backoff: %v", err)
			}
			h.clock.Advance(backoff)
		}
	}
}

// TestCallbackRetryLogs: each reason to ask again is logged as what it
// is, with when the next attempt is due (a RETRY at info, so a request
// sitting as delivered explains itself), and a budget spent on a RETRY
// without a reason ends in an error without a dangling colon.
func TestCallbackRetryLogs(t *testing.T) {
	retry := callback.Backoff{MaxAttempts: 8, Initial: time.Minute, Max: time.Minute, Multiplier: 1}
	d := &scriptDecider{script: []attemptResult{
		{d: callback.Decision{Action: callback.ActionRetry, RejectionReason: "busy"}},
		{d: callback.Decision{Action: callback.ActionRetry}},
		{err: &callback.StatusError{Code: 500}},
		{err: &callback.StatusError{Code: 302}},
		{err: fmt.Errorf("%w: no answer within 30s", callback.ErrTimeout)},
		{err: fmt.Errorf("%w: dial tcp 127.0.0.1:9: connect: connection refused", callback.ErrUnreachable)},
		{err: fmt.Errorf("%w: more than 65536 bytes", callback.ErrResponseTooLarge)},
		{d: callback.Decision{Action: callback.ActionRetry}},
	}}
	h := newCallbackHarness(t, d, retry)
	start := h.clock.Now()
	a := h.ask(t, "r-1", time.Minute)

	if a.err == nil || a.decision.Approved() {
		t.Fatalf("answer %+v, want a failure", a)
	}
	if !errors.Is(a.err, callback.ErrBudgetExhausted) || !errors.Is(a.err, callback.ErrRetryRequested) {
		t.Errorf("err = %v, want the budget spent on RETRY", a.err)
	}
	if msg := a.err.Error(); strings.HasSuffix(strings.TrimSpace(msg), ":") || !strings.HasSuffix(msg, "handler answered RETRY") {
		t.Errorf("err %q: a RETRY without a reason must end the message cleanly", msg)
	}

	want := []struct {
		level slog.Level
		msg   string
		attr  string // a key that must be present
		value any    // and its value, when not nil
	}{
		{slog.LevelInfo, "callback handler answered retry", "reason", "busy"},
		{slog.LevelInfo, "callback handler answered retry", "next_attempt", nil},
		{slog.LevelWarn, "callback handler answered an http error", "status", int64(500)},
		{slog.LevelWarn, "callback handler answered a redirect, which is not followed", "status", int64(302)},
		{slog.LevelWarn, "callback handler did not answer in time", "err", nil},
		{slog.LevelWarn, "callback handler unreachable", "err", nil},
		{slog.LevelWarn, "callback attempt failed", "err", nil},
		{slog.LevelWarn, "callback retry budget exhausted", "attempts", int64(8)},
	}
	got := h.log.all()
	if len(got) != len(want) {
		for _, r := range got {
			t.Logf("%s %q %v", r.level, r.msg, r.attrs)
		}
		t.Fatalf("%d log lines, want %d", len(got), len(want))
	}
	for i, w := range want {
		r := got[i]
		v, ok := r.attrs[w.attr]
		if r.level != w.level || r.msg != w.msg || !ok || (w.value != nil && v != w.value) {
			t.Errorf("line %d: %s %q %v; want %s %q with %s=%v", i+1, r.level, r.msg, r.attrs, w.level, w.msg, w.attr, w.value)
		}
		if w.msg == "callback retry budget exhausted" {
			continue
		}
		// Every scheduled retry says when it comes.
		if next, want := r.attrs["next_attempt"], start.Add(time.Duration(i+1)*time.Minute); next != want || r.attrs["retry_in"] != time.Minute {
			t.Errorf("line %d: next_attempt %v retry_in %v, want %v in 1m", i+1, next, r.attrs["retry_in"], want)
		}
	}
	if _, ok := got[1].attrs["reason"]; ok {
		t.Errorf("a RETRY without a reason logged one: %v", got[1].attrs)
	}
}
