package load_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coterie-mpc/coterie/bench/load"
	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
)

// fakeWorkspace stamps requests with its clock, and finishes each one
// finishAfter after its creation, as the policy would: rejected above the
// limit, approved for a config change, signed otherwise. With finishAfter
// 0 it finishes none.
type fakeWorkspace struct {
	clk         *clock.Fake
	finishAfter time.Duration
	refuse      error
	// slow is how long a submission takes; one whose caller gives up
	// meanwhile is created all the same, as a server may do.
	slow time.Duration

	mu   sync.Mutex
	reqs []*protocol.WsRequest
}

func (f *fakeWorkspace) add(r *protocol.WsRequest) (*protocol.WsRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return nil, f.refuse
	}
	r.Seq = uint64(len(f.reqs) + 1)
	r.Id = "r" + string(rune('a'+len(f.reqs)%26)) + strings.Repeat("x", len(f.reqs)/26)
	r.CreatedAt = f.clk.Now().UnixNano()
	r.State = protocol.WsRequestState_WS_REQUEST_STATE_PENDING
	f.reqs = append(f.reqs, r)
	return r, nil
}

func (f *fakeWorkspace) SubmitTransaction(ctx context.Context, in *protocol.WsSubmitTransactionRequest, _ ...grpc.CallOption) (*protocol.WsRequest, error) {
	r := &protocol.WsRequest{UserId: in.GetUserId(), Body: &protocol.WsRequest_Transaction{Transaction: in.GetTransaction()}}
	if f.slow > 0 {
		done, t := clock.After(f.clk, f.slow)
		defer t.Stop()
		select {
		case <-done:
		case <-ctx.Done():
			_, _ = f.add(r)
			return nil, ctx.Err()
		}
	}
	return f.add(r)
}

func (f *fakeWorkspace) SubmitConfigChange(_ context.Context, in *protocol.WsSubmitConfigChangeRequest, _ ...grpc.CallOption) (*protocol.WsRequest, error) {
	return f.add(&protocol.WsRequest{UserId: in.GetUserId(), Body: &protocol.WsRequest_ConfigChange{ConfigChange: in.GetConfigChange()}})
}

func (f *fakeWorkspace) ListRequests(_ context.Context, in *protocol.WsListRequestsRequest, _ ...grpc.CallOption) (*protocol.WsListRequestsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clk.Now().UnixNano()
	var out []*protocol.WsRequest
	for _, r := range f.reqs {
		if r.GetSeq() <= in.GetAfterSeq() {
			continue
		}
		if f.finishAfter > 0 && r.GetState() == protocol.WsRequestState_WS_REQUEST_STATE_PENDING && now-r.GetCreatedAt() >= f.finishAfter.Nanoseconds() {
			r.State, r.CompletedAt = protocol.WsRequestState_WS_REQUEST_STATE_SIGNED, r.GetCreatedAt()+f.finishAfter.Nanoseconds()
			switch {
			case r.GetConfigChange() != nil:
				r.State = protocol.WsRequestState_WS_REQUEST_STATE_APPROVED
			case r.GetTransaction().GetAmount() == load.RejectAmount:
				r.State, r.Reason = protocol.WsRequestState_WS_REQUEST_STATE_REJECTED, "over the limit"
			}
		}
		out = append(out, r)
	}
	return &protocol.WsListRequestsResponse{Requests: out}, nil
}

// drive runs the load, advancing the fake clock by step until it returns
// (bounded).
func drive(t *testing.T, ws *fakeWorkspace, cfg load.Config) *load.Result {
	t.Helper()
	cfg.Clock = ws.clk
	type out struct {
		res *load.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := load.Run(context.Background(), ws, cfg)
		done <- out{res, err}
	}()
	for range 20000 {
		select {
		case o := <-done:
			if o.err != nil {
				t.Fatal(o.err)
			}
			return o.res
		default:
		}
		// Let the load's goroutines reach their timers before time moves;
		// the bound only keeps a finished load from blocking here.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_ = ws.clk.WaitForTimer(ctx, 0)
		cancel()
		time.Sleep(100 * time.Microsecond)
		ws.clk.Advance(10 * time.Millisecond)
	}
	t.Fatal("the load did not end")
	return nil
}

func config() load.Config {
	cfg := load.DefaultConfig()
	cfg.Users = []string{"u1", "u2"}
	cfg.Duration = 2 * time.Second
	cfg.Drain = time.Second
	cfg.PollEvery = 10 * time.Millisecond
	return cfg
}

func TestClosedLoop(t *testing.T) {
	ws := &fakeWorkspace{clk: clock.NewFake(time.Unix(1e9, 0)), finishAfter: 100 * time.Millisecond}
	cfg := config()
	cfg.Concurrency = 2
	cfg.MaxDigests = 4
	cfg.ConfigChanges, cfg.Reject, cfg.Retry = 0.2, 0.2, 0.2
	res := drive(t, ws, cfg)

	// Two slots, each a request per 100-110 ms, for 2 s.
	if n := len(res.Requests); n < 30 || n > 42 {
		t.Errorf("%d requests, want about 2 s / 100 ms per slot x 2 slots", n)
	}
	kinds, users := map[string]int{}, map[string]int{}
	for _, q := range res.Requests {
		if q.State != q.Expect {
			t.Errorf("%s (%s, expect %s) ended %q", q.ID, q.Kind, q.Expect, q.State)
		}
		if q.Latency() != 100*time.Millisecond {
			t.Errorf("%s: latency %s, want the workspace's 100ms", q.ID, q.Latency())
		}
		if q.Kind == "transaction" && (q.Digests < 1 || q.Digests > 4) {
			t.Errorf("%s: %d digests", q.ID, q.Digests)
		}
		kinds[q.Kind+"/"+q.Expect]++
		users[q.User]++
	}
	for _, k := range []string{"transaction/signed", "transaction/rejected", "config_change/approved"} {
		if kinds[k] == 0 {
			t.Errorf("the mix has no %s: %v", k, kinds)
		}
	}
	if users["u1"] == 0 || users["u2"] == 0 {
		t.Errorf("requests by user: %v, want both", users)
	}
	if len(res.Finished()) != len(res.Requests) {
		t.Errorf("%d of %d finished", len(res.Finished()), len(res.Requests))
	}
}

func TestOpenLoopBacklog(t *testing.T) {
	ws := &fakeWorkspace{clk: clock.NewFake(time.Unix(1e9, 0))} // finishes nothing
	cfg := config()
	cfg.Rate = 10
	cfg.MaxInFlight = 3
	res := drive(t, ws, cfg)
	if len(res.Requests) != 3 {
		t.Errorf("%d requests submitted, want MaxInFlight (3)", len(res.Requests))
	}
	if res.Backlog < 15 || res.Backlog > 18 {
		t.Errorf("backlog %d, want the other submissions of 2 s at 10/s", res.Backlog)
	}
	for _, q := range res.Requests {
		if q.State != "" || q.Latency() != 0 {
			t.Errorf("%s: state %q, latency %s for an open request", q.ID, q.State, q.Latency())
		}
	}
}

func TestRefusedSubmissions(t *testing.T) {
	ws := &fakeWorkspace{clk: clock.NewFake(time.Unix(1e9, 0)), refuse: status.Error(codes.ResourceExhausted, "full")}
	cfg := config()
	cfg.Rate = 5
	res := drive(t, ws, cfg)
	if len(res.Requests) != 0 || res.Refused["ResourceExhausted"] < 9 {
		t.Errorf("requests %d, refused %v; want every submission refused and counted", len(res.Requests), res.Refused)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*load.Config)
		want string
	}{
		{"no users", func(c *load.Config) { c.Users = nil }, "no API users"},
		{"no loop", func(c *load.Config) { c.Concurrency = 0 }, "concurrency is 0"},
		{"negative rate", func(c *load.Config) { c.Rate = -1 }, "rate is -1"},
		{"digests", func(c *load.Config) { c.MaxDigests = 17 }, "max digests is 17"},
		{"shares", func(c *load.Config) { c.Retry, c.Reject = 0.6, 0.6 }, "add up to 1.2"},
		{"share range", func(c *load.Config) { c.ConfigChanges = 2 }, "config-change share is 2"},
		{"duration", func(c *load.Config) { c.Duration = 0 }, "duration is 0s"},
		{"no clock", func(c *load.Config) { c.Clock = nil }, "clock is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config()
			tc.edit(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, load.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want ErrConfig saying %q", err, tc.want)
			}
		})
	}
	if err := config().Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
}

func TestStopEndsSubmissions(t *testing.T) {
	ws := &fakeWorkspace{clk: clock.NewFake(time.Unix(1e9, 0)), finishAfter: 50 * time.Millisecond}
	cfg := config()
	cfg.Duration = time.Hour
	stop := make(chan struct{})
	cfg.Stop = stop
	ws.clk.AfterFunc(time.Second, func() { close(stop) })
	res := drive(t, ws, cfg)
	if res.Elapsed < time.Second || res.Elapsed > 2*time.Second {
		t.Errorf("submissions ran %s, want them to end when Stop closed at 1s", res.Elapsed)
	}
	if len(res.Finished()) != len(res.Requests) || len(res.Requests) == 0 {
		t.Errorf("%d of %d finished, want the drain to finish them all", len(res.Finished()), len(res.Requests))
	}
}

// TestSubmissionAtTheEnd: a submission still in flight when the load ends
// completes and is tracked, since the workspace may create its request
// whatever the caller does.
func TestSubmissionAtTheEnd(t *testing.T) {
	ws := &fakeWorkspace{clk: clock.NewFake(time.Unix(1e9, 0)), finishAfter: 50 * time.Millisecond, slow: 200 * time.Millisecond}
	cfg := config()
	cfg.Rate, cfg.Duration = 1, 1100*time.Millisecond
	res := drive(t, ws, cfg)
	ws.mu.Lock()
	created := len(ws.reqs)
	ws.mu.Unlock()
	if len(res.Requests) != created || len(res.Finished()) != created {
		t.Errorf("the workspace created %d requests, the load tracked %d and saw %d finish", created, len(res.Requests), len(res.Finished()))
	}
}
