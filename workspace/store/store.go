package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"google.golang.org/protobuf/proto"
)

// Config configures a Store.
type Config struct {
	// Path is the bbolt file; it is created 0600 when missing.
	Path string
	// Clock stamps every change.
	Clock clock.Clock
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// RequestTTL is how long a request stays open when its submission sets
	// no lifetime.
	RequestTTL time.Duration
	// MaxBatch bounds how many queued changes one commit groups.
	MaxBatch int
	// OpenTimeout bounds the wait for the file lock held by another process.
	OpenTimeout time.Duration
}

// DefaultConfig returns the defaults: the real clock, requests open for 24
// hours, up to 256 changes per commit, and a one-second lock wait. Path must
// still be set.
func DefaultConfig() Config {
	return Config{
		Clock:       clock.Real(),
		RequestTTL:  24 * time.Hour,
		MaxBatch:    256,
		OpenTimeout: time.Second,
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("store: Path is empty"))
	}
	if c.Clock == nil {
		errs = append(errs, errors.New("store: Clock is nil"))
	}
	if c.RequestTTL <= 0 {
		errs = append(errs, fmt.Errorf("store: RequestTTL must be positive, got %s", c.RequestTTL))
	}
	if c.MaxBatch < 1 || c.MaxBatch > 10000 {
		errs = append(errs, fmt.Errorf("store: MaxBatch must be 1 to 10000, got %d", c.MaxBatch))
	}
	if c.OpenTimeout <= 0 {
		errs = append(errs, fmt.Errorf("store: OpenTimeout must be positive, got %s", c.OpenTimeout))
	}
	return errors.Join(errs...)
}

// Bucket names.
var (
	bMeta       = []byte("meta")
	bWorkspaces = []byte("workspaces")
	bVaults     = []byte("vaults")
	bUsers      = []byte("users")
	bTokens     = []byte("tokens")
	bRequests   = []byte("requests")
	bOpen       = []byte("open")
	bIdem       = []byte("idempotency")
	bAudit      = []byte("audit")
	bCloudKeys  = []byte("cloudkeys")
	bPresigs    = []byte("presignatures")
	bPending    = []byte("pendingrefresh")
	allBuckets  = [][]byte{bMeta, bWorkspaces, bVaults, bUsers, bTokens, bRequests, bOpen, bIdem, bAudit, bCloudKeys, bPresigs, bPending}
)

// Meta keys.
var (
	mSchema     = []byte("schema")
	mUserSeq    = []byte("seq/user")
	mDuplicates = []byte("count/duplicates")
	mSetup      = []byte("setup")
)

const schemaVersion = 1

// Store is the workspace's durable state. See the package documentation.
type Store struct {
	cfg   Config
	db    *bolt.DB
	log   *slog.Logger
	clock clock.Clock

	// mu guards closed against sends on ops racing with Close.
	mu       sync.RWMutex
	closed   bool
	ops      chan *op
	stop     chan struct{}
	loopDone chan struct{}

	notify notifier

	seenMu sync.Mutex
	seen   map[string]int64 // unflushed last-seen times, Unix nanoseconds
}

// op is one queued change.
type op struct {
	fn   func(*txn) error
	done chan error // nil for a change nobody waits for
}

// txn is the context a change function runs in.
type txn struct {
	tx   *bolt.Tx
	now  time.Time
	wake map[string]struct{}
	log  *slog.Logger
}

// errRollback aborts a grouped commit when one change fails.
var errRollback = errors.New("store: rollback")

// New opens (creating when missing) the store at cfg.Path.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{Timeout: cfg.OpenTimeout, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrInUse, cfg.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", cfg.Path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bMeta)
		if v := meta.Get(mSchema); v == nil {
			return meta.Put(mSchema, u64(schemaVersion))
		} else if len(v) != 8 || binary.BigEndian.Uint64(v) != schemaVersion {
			return fmt.Errorf("%w: schema version is not %d", ErrCorrupt, schemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: initialise %s: %w", cfg.Path, err)
	}
	s := &Store{
		cfg:      cfg,
		db:       db,
		log:      log,
		clock:    cfg.Clock,
		ops:      make(chan *op, 4*cfg.MaxBatch),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
		notify:   notifier{ch: make(map[string]chan struct{})},
		seen:     make(map[string]int64),
	}
	go s.loop()
	return s, nil
}

// Close flushes the last-seen times, commits every change already queued,
// and closes the file. It is idempotent.
func (s *Store) Close() error {
	flushErr := s.FlushLastSeen()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.loopDone
	if errors.Is(flushErr, ErrClosed) {
		flushErr = nil
	}
	return errors.Join(flushErr, s.db.Close())
}

// update queues fn and waits for its commit.
func (s *Store) update(fn func(*txn) error) error {
	o := &op{fn: fn, done: make(chan error, 1)}
	if err := s.enqueue(o); err != nil {
		return err
	}
	return <-o.done
}

// updateAsync queues fn without waiting; failures are logged.
func (s *Store) updateAsync(fn func(*txn) error) error {
	return s.enqueue(&op{fn: fn})
}

func (s *Store) enqueue(o *op) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.ops <- o
	return nil
}

func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return s.db.View(fn)
}

func (s *Store) loop() {
	defer close(s.loopDone)
	for {
		select {
		case o := <-s.ops:
			s.commit(s.collect(o))
		case <-s.stop:
			for {
				select {
				case o := <-s.ops:
					s.commit(s.collect(o))
				default:
					return
				}
			}
		}
	}
}

func (s *Store) collect(first *op) []*op {
	batch := []*op{first}
	for len(batch) < s.cfg.MaxBatch {
		select {
		case o := <-s.ops:
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// commit runs batch in one transaction. If a change fails, the transaction
// rolls back and each change is retried in a transaction of its own, so
// that only the failing change fails.
func (s *Store) commit(batch []*op) {
	now := s.clock.Now()
	wake := make(map[string]struct{})
	var failErr error
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, o := range batch {
			if err := o.fn(&txn{tx: tx, now: now, wake: wake, log: s.log}); err != nil {
				failErr = err
				return errRollback
			}
		}
		return nil
	})
	switch {
	case err == nil:
		s.notify.wakeAll(wake)
		for _, o := range batch {
			s.done(o, nil)
		}
	case len(batch) == 1:
		if errors.Is(err, errRollback) {
			err = failErr
		} else {
			err = fmt.Errorf("store: commit: %w", err)
		}
		s.done(batch[0], err)
	default:
		for _, o := range batch {
			s.commit([]*op{o})
		}
	}
}

func (s *Store) done(o *op, err error) {
	if o.done != nil {
		o.done <- err
		return
	}
	if err != nil {
		s.log.Warn("background change failed", "err", err)
	}
}

// notifier wakes pollers. Each user has at most one channel, closed and
// forgotten by the next commit that concerns the user.
type notifier struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

func (n *notifier) watch(user string) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.ch[user]
	if c == nil {
		c = make(chan struct{})
		n.ch[user] = c
	}
	return c
}

func (n *notifier) wakeAll(users map[string]struct{}) {
	if len(users) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for u := range users {
		if c := n.ch[u]; c != nil {
			close(c)
			delete(n.ch, u)
		}
	}
}

// Changed returns a channel that is closed by the next commit that adds a
// request for userID. To miss nothing, call Changed, then read with
// OpenAfter, then wait on the channel.
func (s *Store) Changed(userID string) <-chan struct{} { return s.notify.watch(userID) }

// ---------------------------------------------------------------- encoding helpers

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// userKey joins a user ID and a suffix; user IDs never contain NUL.
func userKey(user string, suffix []byte) []byte {
	k := make([]byte, 0, len(user)+1+len(suffix))
	k = append(k, user...)
	k = append(k, 0)
	return append(k, suffix...)
}

func get[M proto.Message](b *bolt.Bucket, key []byte, m M) (M, bool, error) {
	v := b.Get(key)
	if v == nil {
		return m, false, nil
	}
	if err := proto.Unmarshal(v, m); err != nil {
		return m, false, fmt.Errorf("%w: %s/%x: %v", ErrCorrupt, "record", key, err)
	}
	return m, true, nil
}

func put(b *bolt.Bucket, key []byte, m proto.Message) error {
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("store: marshal: %w", err)
	}
	return b.Put(key, v)
}

func (t *txn) nanos() int64 { return t.now.UnixNano() }

func (t *txn) incr(key []byte) error {
	meta := t.tx.Bucket(bMeta)
	var n uint64
	if v := meta.Get(key); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	return meta.Put(key, u64(n+1))
}

func counter(tx *bolt.Tx, key []byte) uint64 {
	if v := tx.Bucket(bMeta).Get(key); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func unmarshal(v []byte, m proto.Message) error {
	if err := proto.Unmarshal(v, m); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}
