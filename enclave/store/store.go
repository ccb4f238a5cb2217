package store

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/keyring"
)

// FileName is the name of the store's bbolt file in the data directory.
const FileName = "node.db"

// SchemaVersion is the layout version this build writes and reads. A store
// with a higher version is refused with ErrNewerSchema.
const SchemaVersion = 1

// Errors of the store.
var (
	// ErrAlreadyInitialized is returned by Create when the data directory
	// already holds a store. Create never overwrites one.
	ErrAlreadyInitialized = errors.New("store: data directory is already initialized")

	// ErrNotInitialized is returned by Open when the data directory holds no
	// store.
	ErrNotInitialized = errors.New("store: data directory is not initialized (run coterie node init)")

	// ErrCorrupt is returned when the store file is damaged: truncated,
	// overwritten, or missing records.
	ErrCorrupt = errors.New("store: store file is corrupt or truncated")

	// ErrNewerSchema is returned by Open when a newer Coterie wrote the store.
	ErrNewerSchema = errors.New("store: store was written by a newer version of Coterie")

	// ErrLocked is returned by Open when another process has the store open.
	ErrLocked = errors.New("store: data directory is in use by another process (is the node running?)")
)

// Config configures a store.
type Config struct {
	// Dir is the node's data directory. Create makes it, mode 0700, if
	// needed; the store file inside it has mode 0600.
	Dir string
	// LockTimeout is how long Open waits for another process to release the
	// store before failing with ErrLocked.
	LockTimeout time.Duration
	// Logger receives lifecycle messages. The store never logs a secret.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with a one-second lock timeout and the
// default logger. Dir must still be set.
func DefaultConfig() Config {
	return Config{LockTimeout: time.Second, Logger: slog.Default()}
}

// Validate reports every problem with c at once, or nil.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("store: Dir is empty"))
	}
	if c.LockTimeout <= 0 {
		errs = append(errs, fmt.Errorf("store: LockTimeout %s is not positive", c.LockTimeout))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("store: Logger is nil"))
	}
	return errors.Join(errs...)
}

// Layout: bucket "meta" holds "schema" (uint32) and "kind" (one byte);
// bucket "node" holds the identity's public key and the two sealed records.
var (
	bucketMeta     = []byte("meta")
	bucketNode     = []byte("node")
	keySchema      = []byte("schema")
	keyKind        = []byte("kind")
	keyIdentityPub = []byte("identity.public")
	keyIdentity    = []byte("identity.sealed")
	keyKeyring     = []byte("keyring.sealed")
	keyMembers     = []byte("members.sealed")
)

// membersAD binds the sealed member table to its record and its node.
func membersAD(pub ed25519.PublicKey) []byte {
	return append([]byte("coterie/store/v1/members\x00"), pub...)
}

// identityAD binds the sealed identity seed to its record and to its public
// key, so no other sealed blob opens as the identity.
func identityAD(pub ed25519.PublicKey) []byte {
	return append([]byte("coterie/store/v1/identity\x00"), pub...)
}

// Info is the public part of a store, readable without the enclave.
type Info struct {
	Schema uint32
	// Kind is the enclave kind that sealed the records.
	Kind enclave.Kind
	// KeyPolicy is the key policy the identity was sealed under.
	KeyPolicy enclave.KeyPolicy
	// Identity is the node's identity public key.
	Identity ed25519.PublicKey
}

// Store is a node's local store of sealed records: its identity key and its
// copy of the keyring, in one bbolt file. Every write is one bbolt
// transaction, so it is atomic. An open Store holds an exclusive lock on the
// file, so two processes never share a data directory.
//
// A Store is safe for concurrent use. Close it when done.
type Store struct {
	db     *bolt.DB
	info   Info
	logger *slog.Logger
}

// Exists reports whether dir holds a store file. It does not check it.
func Exists(dir string) (bool, error) {
	_, err := os.Stat(filepath.Join(dir, FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Create initializes the store in cfg.Dir with the node's identity key and
// keyring, both sealed by s. It writes the whole file under a temporary
// name and then links it into place, so the data directory holds either no
// store or a complete one; it fails with ErrAlreadyInitialized rather than
// replace a store.
func Create(cfg Config, s enclave.Sealer, identity ed25519.PrivateKey, kr *keyring.Keyring) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if len(identity) != ed25519.PrivateKeySize {
		return fmt.Errorf("store: identity key has %d bytes, want %d", len(identity), ed25519.PrivateKeySize)
	}
	final := filepath.Join(cfg.Dir, FileName)
	if exists, err := Exists(cfg.Dir); err != nil || exists {
		if err == nil {
			err = fmt.Errorf("%w: %s exists", ErrAlreadyInitialized, final)
		}
		return err
	}
	pub := identity.Public().(ed25519.PublicKey)
	sealedID, err := s.Seal(identity.Seed(), identityAD(pub))
	if err != nil {
		return fmt.Errorf("store: seal node identity: %w", err)
	}
	sealedKR, err := kr.MarshalSealed(s)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("store: %w", err)
	}

	suffix := make([]byte, 8)
	rand.Read(suffix)
	tmp := filepath.Join(cfg.Dir, "."+FileName+".tmp-"+hex.EncodeToString(suffix))
	defer func() { _ = os.Remove(tmp) }()
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: cfg.LockTimeout})
	if err != nil {
		return fmt.Errorf("store: create %s: %w", tmp, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		node, err := tx.CreateBucket(bucketNode)
		if err != nil {
			return err
		}
		return errors.Join(
			meta.Put(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion)),
			meta.Put(keyKind, []byte{byte(s.Kind())}),
			node.Put(keyIdentityPub, pub),
			node.Put(keyIdentity, sealedID),
			node.Put(keyKeyring, sealedKR),
		)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: write %s: %w", tmp, err)
	}
	// A hard link, unlike a rename, never replaces a store that appeared
	// since the check above.
	if err := os.Link(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s exists", ErrAlreadyInitialized, final)
		}
		return fmt.Errorf("store: %w", err)
	}
	if err := syncDir(cfg.Dir); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	cfg.Logger.Info("node store created", "path", final, "enclave", s.Kind(), "identity", hex.EncodeToString(pub))
	return nil
}

// Open opens the store in cfg.Dir, checks its schema and records, and locks
// it. Errors: ErrNotInitialized, ErrCorrupt, ErrNewerSchema, ErrLocked.
// Open does not unseal anything; see Identity and Keyring.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	path := filepath.Join(cfg.Dir, FileName)
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: no %s", ErrNotInitialized, path)
	case err != nil:
		return nil, fmt.Errorf("store: %w", err)
	case st.Size() == 0:
		return nil, fmt.Errorf("%w: %s is empty", ErrCorrupt, path)
	}
	// bbolt trusts its file: a damaged page can make it panic, and a page
	// past the end of a truncated file can crash the process. So first
	// check a private copy, taken under a shared lock so that no writer is
	// midway, and only then open the real file.
	data, err := snapshot(path, cfg.LockTimeout)
	if err != nil {
		return nil, err
	}
	info, err := validate(cfg.Dir, data)
	if err != nil {
		return nil, err
	}
	db, err := openBolt(path, &bolt.Options{Timeout: cfg.LockTimeout})
	if err != nil {
		return nil, err
	}
	return &Store{db: db, info: info, logger: cfg.Logger}, nil
}

// snapshot returns the bytes of the store file, read while holding a
// shared lock on it. Opening read-only makes bbolt read only the two meta
// pages, which it checksums.
func snapshot(path string, timeout time.Duration) ([]byte, error) {
	db, err := openBolt(path, &bolt.Options{Timeout: timeout, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return data, nil
}

// validate opens a temporary copy of data the way the real open will, and
// reads every record, so that any page that would make bbolt fail does so
// on the copy. A panic there leaves at most a mapping of the deleted copy
// behind, never a lock on the real file.
func validate(dir string, data []byte) (Info, error) {
	tmp, err := os.CreateTemp(dir, "."+FileName+".check-*")
	if err != nil {
		return Info{}, fmt.Errorf("store: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Info{}, fmt.Errorf("store: %w", err)
	}
	db, err := openBolt(tmp.Name(), &bolt.Options{Timeout: time.Second, ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		return Info{}, err
	}
	defer db.Close()
	var info Info
	err = guard("read", func() error {
		return db.View(func(tx *bolt.Tx) (err error) {
			info, err = checkTx(tx, int64(len(data)))
			return err
		})
	})
	return info, err
}

// openBolt opens a bbolt file, turning a panic into ErrCorrupt and closing
// the file descriptor bbolt had opened. A memory mapping bbolt had made
// stays until the process exits, and with it bbolt's lock on that file:
// hence Open lets bbolt at nothing but a private copy until it is checked.
func openBolt(path string, opts *bolt.Options) (*bolt.DB, error) {
	var file *os.File
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	var db *bolt.DB
	err := guard("open", func() (err error) {
		db, err = bolt.Open(path, 0o600, opts)
		return err
	})
	if errors.Is(err, ErrCorrupt) && db == nil && file != nil {
		_ = file.Close()
	}
	if err != nil {
		return nil, openError(path, err)
	}
	return db, nil
}

func openError(path string, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("%w: %s", ErrLocked, path)
	case errors.Is(err, ErrCorrupt), errors.Is(err, fs.ErrPermission):
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
}

// checkTx checks the file size against the database's high-water mark, the
// schema, and the presence and shape of every record.
func checkTx(tx *bolt.Tx, fileSize int64) (Info, error) {
	if tx.Size() > fileSize {
		return Info{}, fmt.Errorf("%w: the file has %d bytes, its pages need %d", ErrCorrupt, fileSize, tx.Size())
	}
	meta, node := tx.Bucket(bucketMeta), tx.Bucket(bucketNode)
	if meta == nil || node == nil {
		return Info{}, fmt.Errorf("%w: missing buckets", ErrCorrupt)
	}
	schema, kind := meta.Get(keySchema), meta.Get(keyKind)
	if len(schema) != 4 {
		return Info{}, fmt.Errorf("%w: no schema version", ErrCorrupt)
	}
	info := Info{Schema: binary.BigEndian.Uint32(schema)}
	if info.Schema > SchemaVersion {
		return Info{}, fmt.Errorf("%w: schema %d, this build reads up to %d", ErrNewerSchema, info.Schema, SchemaVersion)
	}
	if info.Schema == 0 {
		return Info{}, fmt.Errorf("%w: schema version 0", ErrCorrupt)
	}
	if len(kind) != 1 || !enclave.Kind(kind[0]).Valid() {
		return Info{}, fmt.Errorf("%w: no valid enclave kind", ErrCorrupt)
	}
	info.Kind = enclave.Kind(kind[0])
	pub := node.Get(keyIdentityPub)
	if len(pub) != ed25519.PublicKeySize {
		return Info{}, fmt.Errorf("%w: no identity public key", ErrCorrupt)
	}
	info.Identity = append(ed25519.PublicKey(nil), pub...)
	if len(node.Get(keyIdentity)) == 0 || len(node.Get(keyKeyring)) == 0 {
		return Info{}, fmt.Errorf("%w: missing sealed records", ErrCorrupt)
	}
	h, _, _, err := enclave.ParseSealed(node.Get(keyIdentity))
	if err != nil {
		return Info{}, fmt.Errorf("%w: sealed identity: %w", ErrCorrupt, err)
	}
	info.KeyPolicy = h.Policy
	return info, nil
}

// guard runs a bbolt call and turns a panic or a memory fault inside it,
// which bbolt can raise on a damaged page, into ErrCorrupt.
func guard(what string, f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: bbolt failed during %s: %v", ErrCorrupt, what, r)
		}
	}()
	return f()
}

// Info returns the store's public part.
func (s *Store) Info() Info {
	info := s.info
	info.Identity = append(ed25519.PublicKey(nil), info.Identity...)
	return info
}

// Close releases the store and its lock.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) checkKind(sealer enclave.Sealer) error {
	if sealer.Kind() != s.info.Kind {
		return fmt.Errorf("%w (this data directory was sealed by a %s enclave, this node runs %s)", enclave.ErrForeignEnclave, s.info.Kind, sealer.Kind())
	}
	return nil
}

func (s *Store) get(key []byte) ([]byte, error) {
	var v []byte
	err := guard("read", func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			node := tx.Bucket(bucketNode)
			if node == nil {
				return fmt.Errorf("%w: missing buckets", ErrCorrupt)
			}
			v = append([]byte(nil), node.Get(key)...)
			return nil
		})
	})
	if err == nil && len(v) == 0 {
		err = fmt.Errorf("%w: missing record %s", ErrCorrupt, key)
	}
	return v, err
}

// Identity unseals the node's identity key with sealer. Errors wrap the
// Sealer's (enclave.ErrForeignEnclave for another machine's directory,
// enclave.ErrTampered, ...) or ErrCorrupt.
func (s *Store) Identity(sealer enclave.Sealer) (ed25519.PrivateKey, error) {
	if err := s.checkKind(sealer); err != nil {
		return nil, fmt.Errorf("store: node identity: %w", err)
	}
	sealed, err := s.get(keyIdentity)
	if err != nil {
		return nil, err
	}
	seed, err := sealer.Unseal(sealed, identityAD(s.info.Identity))
	if err != nil {
		return nil, fmt.Errorf("store: node identity: %w", err)
	}
	defer clear(seed)
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: sealed identity has the wrong size", ErrCorrupt)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// Keyring unseals the node's copy of the keyring with sealer. Errors are
// those of keyring.Open, or ErrCorrupt.
func (s *Store) Keyring(sealer enclave.Sealer) (*keyring.Keyring, error) {
	if err := s.checkKind(sealer); err != nil {
		return nil, fmt.Errorf("store: keyring: %w", err)
	}
	sealed, err := s.get(keyKeyring)
	if err != nil {
		return nil, err
	}
	kr, err := keyring.Open(sealer, sealed)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return kr, nil
}

// SaveKeyring seals kr with sealer and replaces the stored keyring in one
// atomic transaction: after a rotation, or after receiving the keyring from
// a peer.
func (s *Store) SaveKeyring(sealer enclave.Sealer, kr *keyring.Keyring) error {
	if err := s.checkKind(sealer); err != nil {
		return fmt.Errorf("store: keyring: %w", err)
	}
	sealed, err := kr.MarshalSealed(sealer)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := s.put(keyKeyring, sealed); err != nil {
		return fmt.Errorf("store: save keyring: %w", err)
	}
	s.logger.Info("keyring saved", "version", kr.Version())
	return nil
}

// SaveJoin records a completed join in one atomic transaction: the
// cluster's keyring, received from the member, replaces this node's own,
// and members (the member table at the time, which the caller encodes) is
// kept sealed with it, so that the node authenticates its first peers by
// it.
func (s *Store) SaveJoin(sealer enclave.Sealer, kr *keyring.Keyring, members []byte) error {
	if err := s.checkKind(sealer); err != nil {
		return fmt.Errorf("store: join: %w", err)
	}
	sealedKR, err := kr.MarshalSealed(sealer)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	sealedJoin, err := sealer.Seal(members, membersAD(s.info.Identity))
	if err != nil {
		return fmt.Errorf("store: seal member table: %w", err)
	}
	if err := s.put(keyKeyring, sealedKR, keyMembers, sealedJoin); err != nil {
		return fmt.Errorf("store: save join: %w", err)
	}
	s.logger.Info("join recorded", "keyring_version", kr.Version())
	return nil
}

// SaveMembers replaces the member table the node last saw (encoded by the
// caller), sealed: the node authenticates its peers by it after a restart,
// until its raft replica has replayed to where it was saved.
func (s *Store) SaveMembers(sealer enclave.Sealer, members []byte) error {
	if err := s.checkKind(sealer); err != nil {
		return fmt.Errorf("store: member table: %w", err)
	}
	sealed, err := sealer.Seal(members, membersAD(s.info.Identity))
	if err != nil {
		return fmt.Errorf("store: seal member table: %w", err)
	}
	if err := s.put(keyMembers, sealed); err != nil {
		return fmt.Errorf("store: save member table: %w", err)
	}
	return nil
}

// Members returns the member table SaveJoin or SaveMembers kept, and false
// for a node that has none yet.
func (s *Store) Members(sealer enclave.Sealer) ([]byte, bool, error) {
	if err := s.checkKind(sealer); err != nil {
		return nil, false, fmt.Errorf("store: member table: %w", err)
	}
	var sealed []byte
	err := guard("read", func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			node := tx.Bucket(bucketNode)
			if node == nil {
				return fmt.Errorf("%w: missing buckets", ErrCorrupt)
			}
			sealed = append([]byte(nil), node.Get(keyMembers)...)
			return nil
		})
	})
	if err != nil || len(sealed) == 0 {
		return nil, false, err
	}
	b, err := sealer.Unseal(sealed, membersAD(s.info.Identity))
	if err != nil {
		return nil, false, fmt.Errorf("store: member table: %w", err)
	}
	return b, true, nil
}

// Copy returns a consistent copy of the store's file, as of its last
// write, for a node that keeps a copy elsewhere (its records are sealed).
func (s *Store) Copy() ([]byte, error) {
	var buf bytes.Buffer
	err := guard("copy", func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			_, err := tx.WriteTo(&buf)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// put writes key/value pairs to the node bucket in one transaction.
func (s *Store) put(kv ...[]byte) error {
	return guard("write", func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			node := tx.Bucket(bucketNode)
			if node == nil {
				return fmt.Errorf("%w: missing buckets", ErrCorrupt)
			}
			for i := 0; i+1 < len(kv); i += 2 {
				if err := node.Put(kv[i], kv[i+1]); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
