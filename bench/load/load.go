package load

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/request"
	"github.com/coterie-mpc/coterie/workspace/store"
)

// ErrConfig is returned by Config.Validate and Run for a config that
// cannot run; the error lists every problem.
var ErrConfig = errors.New("load: bad config")

// Workspace is the part of the workspace's admin API that Run uses;
// *client.Admin implements it. Its calls may run concurrently.
type Workspace interface {
	SubmitTransaction(ctx context.Context, in *protocol.WsSubmitTransactionRequest, opts ...grpc.CallOption) (*protocol.WsRequest, error)
	SubmitConfigChange(ctx context.Context, in *protocol.WsSubmitConfigChangeRequest, opts ...grpc.CallOption) (*protocol.WsRequest, error)
	ListRequests(ctx context.Context, in *protocol.WsListRequestsRequest, opts ...grpc.CallOption) (*protocol.WsListRequestsResponse, error)
}

// Config is a workload.
type Config struct {
	// Users are the API users the requests are spread over.
	Users []string
	// Rate is the open-loop submissions per second; 0 runs closed loop.
	Rate float64
	// Concurrency is the closed-loop requests in flight.
	Concurrency int
	// Duration is how long requests are submitted, at most.
	Duration time.Duration
	// Stop, if set, ends the submissions early when it is closed (a drill
	// closes it after its last round); the drain follows as after
	// Duration.
	Stop <-chan struct{}
	// Drain bounds the wait for the requests still open after Duration.
	Drain time.Duration
	// MaxDigests is the most digests a transaction carries; each has 1 to
	// MaxDigests, uniformly.
	MaxDigests int
	// ConfigChanges, Retry and Reject are shares, 0 to 1: of the requests,
	// the config changes; of the transactions, those the handler answers
	// RETRY once and those it rejects (Policy). Retry and Reject need a
	// handler that runs Policy.
	ConfigChanges, Retry, Reject float64
	// MaxInFlight bounds open loop's unfinished requests: a submission due
	// while that many are open is skipped and counted as backlog.
	MaxInFlight int
	// PollEvery paces the reading of the workspace's requests.
	PollEvery time.Duration
	// CallTimeout bounds one workspace call.
	CallTimeout time.Duration
	// Seed makes the mix repeatable.
	Seed uint64
	// Clock paces the load.
	Clock clock.Clock
	// Progress, if set, is called after every poll.
	Progress func(Progress)
}

// DefaultConfig returns a light closed-loop load of one request at a time
// for 30 s; the caller sets Users.
func DefaultConfig() Config {
	return Config{
		Concurrency: 1,
		Duration:    30 * time.Second,
		Drain:       2 * time.Minute,
		MaxDigests:  1,
		MaxInFlight: 1000,
		PollEvery:   50 * time.Millisecond,
		CallTimeout: 10 * time.Second,
		Seed:        1,
		Clock:       clock.Real(),
	}
}

// Validate reports every problem of c at once, wrapped in ErrConfig.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Users) == 0 {
		bad("no API users")
	}
	switch {
	case c.Rate < 0:
		bad("rate is %g, want more than 0 (open loop) or 0 (closed loop)", c.Rate)
	case c.Rate == 0 && c.Concurrency < 1:
		bad("concurrency is %d, want at least 1 (or give a rate)", c.Concurrency)
	}
	if c.Duration <= 0 {
		bad("duration is %s, want more than 0", c.Duration)
	}
	if c.Drain < 0 {
		bad("drain is %s, want 0 or more", c.Drain)
	}
	if c.MaxDigests < 1 || c.MaxDigests > request.MaxDigests {
		bad("max digests is %d, want 1 to %d", c.MaxDigests, request.MaxDigests)
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"config-change share", c.ConfigChanges}, {"retry share", c.Retry}, {"reject share", c.Reject}} {
		if s.v < 0 || s.v > 1 {
			bad("%s is %g, want 0 to 1", s.name, s.v)
		}
	}
	if c.Retry+c.Reject > 1 {
		bad("retry and reject shares add up to %g, more than 1", c.Retry+c.Reject)
	}
	if c.Rate > 0 && c.MaxInFlight < 1 {
		bad("max in flight is %d, want at least 1", c.MaxInFlight)
	}
	if c.PollEvery <= 0 || c.CallTimeout <= 0 {
		bad("poll interval %s and call timeout %s must be more than 0", c.PollEvery, c.CallTimeout)
	}
	if c.Clock == nil {
		bad("clock is nil")
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}

// Progress is the load's state after a poll.
type Progress struct {
	Elapsed   time.Duration
	Submitted int
	Finished  int
	Open      int
}

// Request is one request the load submitted.
type Request struct {
	ID   string
	User string
	// Kind is "transaction" or "config_change".
	Kind    string
	Digests int
	// Expect is the final state the mix asked for: signed, approved or
	// rejected.
	Expect string
	// Submitted is when the submission was sent, by Config.Clock.
	Submitted time.Time
	// Created and Finished are the workspace's times of creation and of
	// the final state; Finished is zero while the request is open.
	Created, Finished time.Time
	// State is the final state (store.RequestStateName), or "" while open.
	State  string
	Reason string

	seq uint64
}

// Latency is the request's time from creation to its final state, by the
// workspace's clock; 0 while it is open.
func (r *Request) Latency() time.Duration {
	if r.Finished.IsZero() {
		return 0
	}
	return r.Finished.Sub(r.Created)
}

// Result is what a load did.
type Result struct {
	// Started is when the first submission was due; Elapsed how long
	// submissions ran.
	Started time.Time
	Elapsed time.Duration
	// Requests are the submitted requests, in order of submission.
	Requests []*Request
	// Refused counts submissions the workspace refused, by gRPC code.
	Refused map[string]int
	// Backlog counts open-loop submissions skipped because MaxInFlight
	// requests were open.
	Backlog int
}

// run is one Run's state.
type run struct {
	cfg Config
	ws  Workspace
	rng *rand.Rand
	// base is Run's context: a submission runs under it, not under the
	// load's end, since a call cut short by the end may still have
	// created its request, which the load would then lose track of.
	base context.Context

	mu      sync.Mutex
	res     Result
	open    map[string]*Request
	waiters map[string]chan struct{}
	rngMu   sync.Mutex
}

// Run drives cfg's load against ws. It returns what it measured also when
// ctx ends early, with ctx's error.
func Run(ctx context.Context, ws Workspace, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, ws: ws, base: ctx, rng: rand.New(rand.NewPCG(cfg.Seed, 0x636f74657269)),
		open: map[string]*Request{}, waiters: map[string]chan struct{}{}}
	r.res.Refused = map[string]int{}
	r.res.Started = cfg.Clock.Now()

	pollCtx, stopPoll := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() { defer close(polled); r.pollLoop(pollCtx) }()

	loadCtx, cancel := context.WithCancel(ctx)
	end := cfg.Clock.AfterFunc(cfg.Duration, cancel)
	if cfg.Stop != nil {
		go func() {
			select {
			case <-cfg.Stop:
				cancel()
			case <-loadCtx.Done():
			}
		}()
	}
	if cfg.Rate > 0 {
		r.openLoop(loadCtx)
	} else {
		r.closedLoop(loadCtx)
	}
	end.Stop()
	cancel()
	r.mu.Lock()
	r.res.Elapsed = cfg.Clock.Now().Sub(r.res.Started)
	r.mu.Unlock()

	// Drain: wait for the open requests, by the poller's word.
	for until := cfg.Clock.Now().Add(cfg.Drain); r.openCount() > 0 && cfg.Clock.Now().Before(until); {
		if clock.Sleep(ctx, cfg.Clock, cfg.PollEvery) != nil {
			break
		}
	}
	stopPoll()
	<-polled
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.res
	return &res, ctx.Err()
}

func (r *run) openCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.open)
}

// openLoop submits at cfg.Rate until ctx ends. Submissions run on their
// own goroutines so that a slow one does not delay the next, bounded by
// MaxInFlight.
func (r *run) openLoop(ctx context.Context) {
	every := time.Duration(float64(time.Second) / r.cfg.Rate)
	var wg sync.WaitGroup
	defer wg.Wait()
	next := r.res.Started
	for i := 0; ; i++ {
		if err := clock.Sleep(ctx, r.cfg.Clock, next.Sub(r.cfg.Clock.Now())); err != nil {
			return
		}
		next = next.Add(every)
		if r.openCount() >= r.cfg.MaxInFlight {
			r.mu.Lock()
			r.res.Backlog++
			r.mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); r.submit(i) }()
	}
}

// closedLoop keeps cfg.Concurrency requests in flight until ctx ends.
func (r *run) closedLoop(ctx context.Context) {
	var wg sync.WaitGroup
	for slot := range r.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := slot; ctx.Err() == nil; i += r.cfg.Concurrency {
				done := r.submit(i)
				if done == nil {
					// Refused: do not spin on a refusing workspace.
					_ = clock.Sleep(ctx, r.cfg.Clock, r.cfg.PollEvery)
					continue
				}
				select {
				case <-done:
				case <-ctx.Done():
				}
			}
		}()
	}
	wg.Wait()
}

// submit sends request i of the mix and returns a channel closed when it
// finishes; nil when the workspace refused it.
func (r *run) submit(i int) <-chan struct{} {
	r.rngMu.Lock()
	it := r.next(i)
	r.rngMu.Unlock()
	ctx := r.base
	cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	sent := r.cfg.Clock.Now()
	var got *protocol.WsRequest
	var err error
	if it.tx != nil {
		got, err = r.ws.SubmitTransaction(cctx, &protocol.WsSubmitTransactionRequest{UserId: it.req.User, Transaction: it.tx})
	} else {
		got, err = r.ws.SubmitConfigChange(cctx, &protocol.WsSubmitConfigChangeRequest{UserId: it.req.User, ConfigChange: it.cc})
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil // the run was interrupted during the call
		}
		r.mu.Lock()
		r.res.Refused[status.Code(err).String()]++
		r.mu.Unlock()
		return nil
	}
	req := it.req
	req.ID, req.seq, req.Submitted = got.GetId(), got.GetSeq(), sent
	req.Created = time.Unix(0, got.GetCreatedAt())
	done := make(chan struct{})
	r.mu.Lock()
	r.res.Requests = append(r.res.Requests, req)
	r.open[req.ID] = req
	r.waiters[req.ID] = done
	r.mu.Unlock()
	return done
}

// pollLoop reads the workspace's requests from the oldest open one on,
// and closes out those that reached a final state.
func (r *run) pollLoop(ctx context.Context) {
	for {
		r.poll(ctx)
		if r.cfg.Progress != nil {
			r.mu.Lock()
			p := Progress{Elapsed: r.cfg.Clock.Now().Sub(r.res.Started), Submitted: len(r.res.Requests), Open: len(r.open)}
			p.Finished = p.Submitted - p.Open
			r.mu.Unlock()
			r.cfg.Progress(p)
		}
		if clock.Sleep(ctx, r.cfg.Clock, r.cfg.PollEvery) != nil {
			return
		}
	}
}

// maxPollPages bounds one poll's listing.
const maxPollPages = 1000

func (r *run) poll(ctx context.Context) {
	r.mu.Lock()
	var after uint64
	first := true
	for _, q := range r.open {
		if first || q.seq-1 < after {
			after, first = q.seq-1, false
		}
	}
	r.mu.Unlock()
	if first {
		return
	}
	for range maxPollPages {
		cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
		resp, err := r.ws.ListRequests(cctx, &protocol.WsListRequestsRequest{AfterSeq: after})
		cancel()
		if err != nil {
			return // the next poll tries again
		}
		r.mu.Lock()
		for _, w := range resp.GetRequests() {
			q, ok := r.open[w.GetId()]
			if !ok || !final(w.GetState()) {
				continue
			}
			q.State, q.Reason = store.RequestStateName(w.GetState()), w.GetReason()
			q.Finished = time.Unix(0, w.GetCompletedAt())
			if w.GetCompletedAt() == 0 {
				q.Finished = time.Unix(0, w.GetUpdatedAt())
			}
			delete(r.open, q.ID)
			close(r.waiters[q.ID])
			delete(r.waiters, q.ID)
		}
		r.mu.Unlock()
		if after = resp.GetNextAfterSeq(); after == 0 {
			return
		}
	}
}

// final reports whether s ends a request for the load: the workspace's
// terminal states, and IGNORED, the co-signer's last word on a config
// change.
func final(s protocol.WsRequestState) bool {
	return store.Terminal(s) || s == protocol.WsRequestState_WS_REQUEST_STATE_IGNORED
}

// item is one request of the mix, before its submission.
type item struct {
	req *Request
	tx  *protocol.WsTransaction
	cc  *protocol.WsConfigChange
}

// next draws request i of the mix. Callers hold rngMu.
func (r *run) next(i int) item {
	user := r.cfg.Users[i%len(r.cfg.Users)]
	if r.rng.Float64() < r.cfg.ConfigChanges {
		return item{req: &Request{User: user, Kind: "config_change", Expect: "approved"}, cc: &protocol.WsConfigChange{
			Type:    protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_EXCHANGE,
			Payload: &protocol.WsConfigChange_Exchange{Exchange: &protocol.WsExchangeAccount{ExchangeType: "BINANCE", Name: fmt.Sprintf("bench %d", i), AccountId: fmt.Sprintf("b-%d", i)}},
		}}
	}
	amount, note, expect := "1", "bench", "signed"
	switch u := r.rng.Float64(); {
	case u < r.cfg.Retry:
		note = "bench " + RetryNote
	case u < r.cfg.Retry+r.cfg.Reject:
		amount, expect = RejectAmount, "rejected"
	}
	n := 1 + r.rng.IntN(r.cfg.MaxDigests)
	tx := &protocol.WsTransaction{
		Asset: "ETH", Amount: amount, Note: note, Source: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
		Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: Destination}, Amount: amount}},
	}
	for d := range n {
		digest := sha256.Sum256(fmt.Appendf(nil, "coterie bench %d/%d/%d", r.cfg.Seed, i, d))
		tx.Digests = append(tx.Digests, &protocol.WsDigestToSign{Digest: digest[:],
			DerivationPath: []uint32{44, 60, uint32(r.rng.IntN(8)), 0, uint32(r.rng.IntN(1000))}})
	}
	return item{req: &Request{User: user, Kind: "transaction", Digests: n, Expect: expect}, tx: tx}
}

// Finished returns the requests of res that reached a final state, in
// order of finishing.
func (res *Result) Finished() []*Request {
	var out []*Request
	for _, q := range res.Requests {
		if q.State != "" {
			out = append(out, q)
		}
	}
	slices.SortFunc(out, func(a, b *Request) int { return a.Finished.Compare(b.Finished) })
	return out
}
