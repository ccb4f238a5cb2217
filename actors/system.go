package actors

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol/mpc"
)

// System runs one node's actors: a Poller and a Callback per API user, a
// Session per claimed request, a PresignPool per MPC key, and their
// supervisors. New builds it, Start starts it, AddUser adds users, Stop
// stops it gracefully. All methods are safe for concurrent use.
type System struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	self    string

	presign *workers  // background presigns (refills)
	online  *workers  // online rounds
	slow    *slowPath // the Sessions' on-the-spot presigns

	as   *actor.ActorSystem
	root *actor.RootContext

	ctx    context.Context // ends at Stop; every goroutine's parent context
	cancel context.CancelFunc
	wg     sync.WaitGroup // goroutines outside the worker pools

	mu       sync.Mutex
	state    int // 0 new, 1 started, 2 stopped
	users    map[string]*userState
	coord    *actor.PID
	status   map[string]SessionStatus // by request
	pools    map[string]PoolStatus    // by key
	unsub    func()
	active   atomic.Int64  // Sessions running
	activity chan struct{} // signalled when active drops
	// coordGen numbers the coordinator's incarnations.
	coordGen atomic.Int64
	// halted holds why signing stopped (an invariant broke), nil while
	// signing.
	halted atomic.Pointer[string]
}

type userState struct {
	User
	// pool is the signing key's presignature pool; nil for an approver.
	pool     *cluster.PresignStore
	mu       sync.Mutex
	share    *mpc.KeyShare
	approval ed25519.PrivateKey
}

// New returns a System for cfg. It starts nothing.
func New(cfg Config) (*System, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := cfg.Metrics
	if m == nil {
		var err error
		if m, err = NewMetrics(nil); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &System{
		cfg: cfg, log: log, metrics: m, self: cfg.Cluster.NodeID(),
		ctx: ctx, cancel: cancel, slow: newSlowPath(cfg.SlowPathWorkers),
		users: map[string]*userState{}, status: map[string]SessionStatus{}, pools: map[string]PoolStatus{},
		activity: make(chan struct{}, 1),
	}, nil
}

// Start starts the actor system, subscribes to the cluster's events and
// spawns the top supervisor, which resumes the requests this node owns.
// ctx bounds only the start itself.
func (s *System) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case 1:
		return nil
	case 2:
		return ErrStopped
	}
	// protoactor's default logger writes to stderr: route it to ours, and
	// only its warnings.
	plog := slog.New(levelHandler{Handler: s.log.Handler(), min: slog.LevelWarn}).With("lib", "protoactor")
	s.as = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return plog }))
	s.root = s.as.Root
	s.presign = newWorkers(s.cfg.PresignWorkers, s.cfg.WorkerQueue)
	s.online = newWorkers(s.cfg.OnlineWorkers, s.cfg.WorkerQueue)
	events, unsub := s.cfg.Cluster.Subscribe(1024)
	s.unsub = unsub
	services := newStrategy("coordinator", s.cfg.Services, exhaustedEscalate, s.cfg.Clock, s.log, s.metrics, s.halt)
	props := actor.PropsFromProducer(func() actor.Actor { return newCoordinator(s) }, actor.WithSupervisor(services))
	pid, err := s.root.SpawnNamed(props, "coterie")
	if err != nil {
		s.presign.Close()
		s.online.Close()
		unsub()
		return fmt.Errorf("actors: spawn coordinator: %w", err)
	}
	s.coord = pid
	s.state = 1
	s.wg.Add(1)
	go s.forward(events)
	return nil
}

// forward turns the cluster's events into messages to the coordinator,
// and wakes the Sessions waiting for a pool that grew.
func (s *System) forward(events <-chan cluster.Event) {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			switch ev.Kind {
			case cluster.EventPresignaturesAdded:
				s.slow.poolGrew(ev.KeyID)
			case cluster.EventRestored:
				s.slow.restored()
			}
			s.root.Send(s.coord, &clusterEvent{ev: ev})
		}
	}
}

// AddUser starts serving an API user: its Callback, its Poller and, for a
// signer, the PresignPool of its key. The System keeps u (and the
// connections in it) until Stop; the caller closes them after Stop.
func (s *System) AddUser(u User) error {
	if err := u.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case 0:
		return ErrNotStarted
	case 2:
		return ErrStopped
	}
	if _, ok := s.users[u.key()]; ok {
		return fmt.Errorf("%w: %s", ErrUserExists, u.key())
	}
	us := &userState{User: u}
	if u.SigningKey != nil {
		pool, err := cluster.NewPresignStore(cluster.PresignStoreConfig{Cluster: s.cfg.Cluster, Cipher: s.cfg.Cipher, KeyID: u.ShareRecordID})
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		us.pool = pool
	}
	s.users[u.key()] = us
	s.root.Send(s.coord, &addUser{user: us})
	return nil
}

// user returns a user by its key (User.Key).
func (s *System) user(id string) (*userState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	return u, ok
}

// allUsers returns the users sorted by id.
func (s *System) allUsers() []*userState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*userState, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Stop stops the Pollers (no new claims), lets running Sessions finish
// until ctx ends, then stops every actor and worker. Sessions still running
// at the deadline are abandoned where they stand: their requests stay
// claimed by this node in the FSM and resume when it starts again (or
// another node takes them after a Release). It returns ErrStopTimeout in
// that case.
func (s *System) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.state != 1 {
		s.state = 2
		s.mu.Unlock()
		return nil
	}
	s.state = 2
	s.mu.Unlock()

	s.root.Send(s.coord, &drain{})
	var result error
	for s.active.Load() > 0 && result == nil {
		select {
		case <-s.activity:
		case <-ctx.Done():
			result = fmt.Errorf("%w: %d", ErrStopTimeout, s.active.Load())
		}
	}
	s.cancel()
	s.unsub()
	_ = s.root.StopFuture(s.coord).Wait() // stops every actor below it
	s.presign.Close()
	s.online.Close()
	s.wg.Wait()
	s.as.Shutdown()
	return result
}

// go runs f on a tracked goroutine with the System's context.
func (s *System) goTracked(f func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f(s.ctx)
	}()
}

// later sends msg to pid after d on the Clock, unless the System stopped.
func (s *System) later(d time.Duration, pid *actor.PID, msg any) {
	s.cfg.Clock.AfterFunc(d, func() {
		if s.ctx.Err() == nil {
			s.root.Send(pid, msg)
		}
	})
}

// halt is Halt for a supervisor that found an invariant broken.
func (s *System) halt(inv *InvariantError) { s.Halt(inv.What) }

// Halt stops the node's claiming and signing for good: an invariant broke,
// or the node must not serve (its callback handler is not the cluster's).
// The Pollers stop, and Sessions take no further step that would reserve,
// sign or approve; their requests stay claimed until the leader releases
// them. It is idempotent; the first reason wins. The node reports it
// (Config.OnHalt) and an operator restarts it.
func (s *System) Halt(reason string) {
	if !s.halted.CompareAndSwap(nil, &reason) {
		return
	}
	s.root.Send(s.coord, &drain{})
	if s.cfg.OnHalt != nil {
		s.cfg.OnHalt(reason)
	}
}

// Halted returns why the System stopped signing, and false while it signs.
func (s *System) Halted() (string, bool) {
	if r := s.halted.Load(); r != nil {
		return *r, true
	}
	return "", false
}

// retryDelay is the delay before the n-th consecutive retry (from 1) of a
// failed step: RetryDelay, doubling up to MaxRetryDelay.
func (s *System) retryDelay(n int) time.Duration {
	return doubling(s.cfg.RetryDelay, s.cfg.MaxRetryDelay, n)
}

// sessionStarted and sessionEnded keep the count that capacity and Stop use.
func (s *System) sessionStarted() {
	s.metrics.Sessions.Set(float64(s.active.Add(1)))
}

func (s *System) sessionEnded(request string) {
	s.metrics.Sessions.Set(float64(s.active.Add(-1)))
	s.mu.Lock()
	delete(s.status, request)
	s.mu.Unlock()
	select {
	case s.activity <- struct{}{}:
	default:
	}
}

// hasCapacity reports whether this node may claim another request.
func (s *System) hasCapacity() bool { return s.active.Load() < int64(s.cfg.MaxSessions) }

// levelHandler drops records below min.
type levelHandler struct {
	slog.Handler
	min slog.Level
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return levelHandler{Handler: h.Handler.WithAttrs(a), min: h.min}
}

func (h levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{Handler: h.Handler.WithGroup(name), min: h.min}
}
