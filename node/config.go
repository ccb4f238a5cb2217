package node

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"gopkg.in/yaml.v3"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/backend"
	"github.com/coterie-mpc/coterie/enclave/gcpcs"
	"github.com/coterie-mpc/coterie/internal/bridge"
)

// Mode says whether a node may run on development-only parts.
type Mode int

// The modes.
const (
	ModeUnknown Mode = iota
	// ModeDevelopment allows the simulated enclave.
	ModeDevelopment
	// ModeProduction refuses the simulated enclave.
	ModeProduction
)

// String returns the mode's name as the config file spells it.
func (m Mode) String() string {
	switch m {
	case ModeDevelopment:
		return "development"
	case ModeProduction:
		return "production"
	default:
		return "unknown"
	}
}

// ParseMode returns the Mode named s.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "development":
		return ModeDevelopment, nil
	case "production":
		return ModeProduction, nil
	}
	return ModeUnknown, fmt.Errorf("%w: mode %q is not development or production", ErrInvalidConfig, s)
}

// maxConfigBytes bounds a config file.
const maxConfigBytes = 1 << 20

// MaxShutdownGrace bounds Config.ShutdownGrace, so that `node cluster
// leave` answers within the admin API's write timeout.
const MaxShutdownGrace = 5 * time.Minute

// Config is a node's configuration: the YAML file `coterie node run
// --config FILE` reads. Every field is documented in the example config,
// node/testdata/example.yaml. Start from DefaultConfig; Validate reports
// every problem at once.
type Config struct {
	// NodeID is this node's id in the cluster: its raft server id and the
	// owner named in its claims. It must never change for a data directory.
	NodeID string `yaml:"node_id"`
	// Mode is "development" (the default) or "production"; production
	// refuses the simulated enclave.
	Mode string `yaml:"mode"`
	// DataDir holds the node's sealed store (node.db), its raft state
	// (raft/), the admin token (admin.token) and, for the sim enclave, its
	// sealing root.
	DataDir string `yaml:"data_dir"`

	Enclave   EnclaveConfig   `yaml:"enclave"`
	Raft      RaftConfig      `yaml:"raft"`
	Cluster   ClusterConfig   `yaml:"cluster"`
	Admin     AdminConfig     `yaml:"admin"`
	Sessions  SessionsConfig  `yaml:"sessions"`
	Presign   PresignConfig   `yaml:"presign"`
	Callback  CallbackConfig  `yaml:"callback"`
	Workspace WorkspaceConfig `yaml:"workspace"`
	Refresh   RefreshConfig   `yaml:"refresh"`
	Log       LogConfig       `yaml:"log"`
	Recovery  RecoveryConfig  `yaml:"recovery"`
	Audit     AuditConfig     `yaml:"audit"`
	Network   NetworkConfig   `yaml:"network"`
	Storage   StorageConfig   `yaml:"storage"`

	// OwnerTimeout is how long the leader lets a node that owns unfinished
	// requests be silent before it releases them to other nodes and burns
	// their reserved presignatures. A node whose process is gone is
	// released at once (cluster's owner watch); this is for the rest: a
	// hung process, a partition, a machine that went down. A node that
	// cannot reach an API user's workspace for as long hands back its
	// requests of that user by itself.
	OwnerTimeout time.Duration `yaml:"owner_timeout"`
	// ShutdownGrace is how long a planned departure (SIGTERM on `node
	// run`, `node cluster leave`) lets the requests in flight finish
	// before it hands the rest back to the other nodes.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`

	// Logger receives the node's logs. It is not read from YAML; when nil,
	// the node builds one from Log. The node adds a component attribute to
	// every record (node, cluster, actors, callback, enclave, store, mpc),
	// so pass a logger that has none of its own.
	Logger *slog.Logger `yaml:"-"`
	// Clock is the node's time source, a clock.Clock: pairing-token
	// expiry, pairing times, the cluster's proposer timestamps and owner
	// watch, the actors' timers and the callback client's timeouts and
	// backoff. Nil means the system clock. It is not read from YAML.
	Clock clock.Clock `yaml:"-"`
	// TuneActors, when set, adjusts the actor system's config after the
	// node has filled it in: for tests and benchmarks (fault hooks, short
	// retry delays). It is not read from YAML.
	TuneActors func(*actors.Config) `yaml:"-"`
}

// WorkspaceConfig is how this node reaches the workspaces of its API users.
type WorkspaceConfig struct {
	// Routes maps a workspace's address, as its pairing tokens give it, to
	// the address this node dials instead: an egress proxy or a tunnel of
	// its own. The workspace's pinned TLS identity is checked either way.
	Routes map[string]string `yaml:"routes,omitempty"`
}

func (c WorkspaceConfig) validate() []error {
	var errs []error
	for from, to := range c.Routes {
		for _, a := range []string{from, to} {
			if _, _, err := net.SplitHostPort(a); err != nil {
				errs = append(errs, fmt.Errorf("%w: workspace.routes: %q is not host:port", ErrInvalidConfig, a))
			}
		}
	}
	return errs
}

// RecoveryConfig names the operators' offline recovery keys that `node
// keyring export` may encrypt the keyring to. The list lives in the config
// file, not in the admin API's request, so that whoever holds only the
// admin token cannot export the keyring to a key of their own.
type RecoveryConfig struct {
	// Recipients are age X25519 recipients ("age1...").
	Recipients []string `yaml:"recipients,omitempty"`
}

func (c RecoveryConfig) validate() []error {
	var errs []error
	for _, r := range c.Recipients {
		if _, err := age.ParseX25519Recipient(r); err != nil {
			errs = append(errs, fmt.Errorf("%w: recovery.recipients: %q is not an age X25519 recipient (age1...)", ErrInvalidConfig, r))
		}
	}
	return errs
}

// EnclaveConfig selects the enclave backend that seals the node's identity
// and keyring.
type EnclaveConfig struct {
	// Kind is the backend: "sim" (development only), "sgx" (a binary
	// built with -tags ego) or "nitro" (a binary built with -tags nitro,
	// run in a Nitro enclave; see Nitro) or "gcpcs" (confidential-space:
	// a binary built with -tags gcpcs, run as a Confidential Space
	// workload; see ConfidentialSpace).
	Kind string `yaml:"kind"`
	// KeyPolicy is what sealing binds to: "product" (survives upgrades by
	// the same signer) or "code" (this exact build).
	KeyPolicy string `yaml:"key_policy"`
	// SimPlatformKey is the sim backend's simulated machine key file.
	// Empty means the sim's default under the user's configuration
	// directory.
	SimPlatformKey string `yaml:"sim_platform_key"`
	// AllowDebug lets the sgx and nitro backends run in a debug enclave,
	// whose memory the host can read: for development only.
	AllowDebug bool `yaml:"allow_debug"`
	// SimTrustedPlatforms are the platform public keys (hex) of the other
	// simulated machines whose evidence the sim backend accepts: list each
	// other machine of a sim cluster (`node status` prints a node's).
	SimTrustedPlatforms []string `yaml:"sim_trusted_platforms"`
	// ConfidentialSpace configures sealing with Cloud KMS for kind gcpcs.
	// Which Confidential Space tokens a node trusts is not here but in the
	// cluster's policy (see PolicyRule.Issuer).
	ConfidentialSpace ConfidentialSpaceConfig `yaml:"confidential_space"`
	// Nitro configures sealing with AWS KMS for kind nitro.
	Nitro NitroConfig `yaml:"nitro"`
}

// NitroConfig configures the nitro backend's sealing through AWS KMS and
// the parent instance's vsock proxies (see backend.NitroConfig).
type NitroConfig struct {
	// Region is the KMS key's region, such as eu-west-1.
	Region string `yaml:"region"`
	// KMSKeyID is the KMS key: key id, key ARN, alias/NAME or alias ARN.
	KMSKeyID string `yaml:"kms_key_id"`
	// KMSProxy is the parent's vsock-proxy to KMS; default vsock://3:8000.
	KMSProxy string `yaml:"kms_proxy"`
	// KMSEndpoint overrides https://kms.REGION.amazonaws.com.
	KMSEndpoint string `yaml:"kms_endpoint"`
	// IMDSProxy is the parent's vsock-proxy to the instance metadata
	// service, for the parent role's credentials; default vsock://3:8001.
	IMDSProxy string `yaml:"imds_proxy"`
}

// backend returns the backend configuration c describes.
func (c NitroConfig) backend() backend.NitroConfig {
	b := backend.NitroConfig{Region: c.Region, KeyID: c.KMSKeyID, KMSProxy: c.KMSProxy, KMSEndpoint: c.KMSEndpoint, IMDSProxy: c.IMDSProxy}
	if b.KMSProxy == "" {
		b.KMSProxy = "vsock://3:8000"
	}
	if b.IMDSProxy == "" {
		b.IMDSProxy = "vsock://3:8001"
	}
	return b
}

// ConfidentialSpaceConfig configures the gcpcs backend's sealing with
// Cloud KMS (see backend.ConfidentialSpaceConfig).
type ConfidentialSpaceConfig struct {
	// Issuer, Audience and HardwareModels are refused by Validate, with a
	// message that says where they went: they were how a node verified
	// Confidential Space joiners, and a node's config file may come from
	// its untrusted host (an SGX node's does), which could then name an
	// issuer of its own. The issuer and hardware models are now fields of
	// the cluster policy's confidential-space rules, recorded through
	// raft; the audience is fixed (gcpcs.Audience).
	Issuer         string   `yaml:"issuer,omitempty"`
	Audience       string   `yaml:"audience,omitempty"`
	HardwareModels []string `yaml:"hardware_models,omitempty"`

	// Project, Location, KeyRing and Key name the Cloud KMS key that
	// wraps the data key.
	Project  string `yaml:"project"`
	Location string `yaml:"location"`
	KeyRing  string `yaml:"key_ring"`
	Key      string `yaml:"key"`
	// WorkloadIdentityProvider is the workload identity pool provider
	// whose attribute condition admits the image:
	// //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER.
	WorkloadIdentityProvider string `yaml:"workload_identity_provider"`
	// STSEndpoint overrides https://sts.googleapis.com/v1/token.
	STSEndpoint string `yaml:"sts_endpoint"`
	// KMSEndpoint overrides https://cloudkms.googleapis.com.
	KMSEndpoint string `yaml:"kms_endpoint"`
	// StorageEndpoint overrides https://storage.googleapis.com, where
	// storage.bucket is.
	StorageEndpoint string `yaml:"storage_endpoint"`
}

// sealing returns the gcpcs backend's sealing configuration c describes.
func (c ConfidentialSpaceConfig) sealing() backend.ConfidentialSpaceConfig {
	return backend.ConfidentialSpaceConfig{
		Project: c.Project, Location: c.Location, KeyRing: c.KeyRing, Key: c.Key,
		WorkloadIdentityProvider: c.WorkloadIdentityProvider, STSEndpoint: c.STSEndpoint, KMSEndpoint: c.KMSEndpoint,
		StorageEndpoint: c.StorageEndpoint,
	}
}

// movedProblems lists the fields of c that moved to the cluster policy.
func (c ConfidentialSpaceConfig) movedProblems() []string {
	const where = "the confidential-space rules of the cluster's attestation policy (cluster.policy when bootstrapping, " +
		"`coterie node cluster policy --set` on a running cluster), recorded through raft, since a node's own config file may come from its untrusted host"
	var out []string
	if c.Issuer != "" {
		out = append(out, "enclave.confidential_space.issuer moved: set issuer on "+where)
	}
	if len(c.HardwareModels) > 0 {
		out = append(out, "enclave.confidential_space.hardware_models moved: set hardware_models on "+where)
	}
	if c.Audience != "" {
		out = append(out, fmt.Sprintf("enclave.confidential_space.audience is no longer set: every node asks for and accepts tokens for %s", gcpcs.Audience))
	}
	return out
}

// NetworkConfig is how the node reaches the network when it has none of
// its own, as inside a Nitro enclave (see internal/bridge).
type NetworkConfig struct {
	// EgressProxy is the HTTP CONNECT proxy every outgoing connection goes
	// through (peers, workspace, callback handler, the Confidential Space
	// issuer): vsock://CID:PORT, unix:PATH or host:port, such as
	// `coterie bridge --proxy` on the parent instance. Empty dials
	// directly.
	EgressProxy string `yaml:"egress_proxy"`
}

// net returns the node's bridge.Net; Validate has checked the proxy's
// address.
func (c NetworkConfig) net() bridge.Net {
	if c.EgressProxy == "" {
		return bridge.Net{}
	}
	a, _ := bridge.ParseAddr(c.EgressProxy)
	return bridge.Net{Egress: &a}
}

// RaftConfig places the node in its raft cluster.
type RaftConfig struct {
	// Bind is the address raft and forwarded proposals listen on: a TCP
	// host:port, or vsock://:PORT (or unix:PATH) for a node whose
	// parent forwards a TCP port to it.
	Bind string `yaml:"bind"`
	// Advertise is the address other nodes dial; empty means Bind.
	// Required when Bind is not TCP.
	Advertise string `yaml:"advertise"`
	// Bootstrap makes a node without raft state start a new cluster of
	// itself alone; the other nodes join it with join tokens. It is ignored
	// once raft state exists, and by a node that joined a cluster.
	Bootstrap bool `yaml:"bootstrap"`
	// NonVoter keeps the node a non-voter once it joins: it claims and
	// signs like any member, but neither votes nor counts toward a commit,
	// so it may lose its raft state (a Nitro enclave's data directory is
	// in memory) and get it back from the leader. A voter must never lose
	// it. Set it before the node first joins.
	NonVoter bool `yaml:"nonvoter"`
}

// StorageConfig keeps what a node needs after a restart somewhere that
// outlives its data directory: copies of its sealed store and its
// enclave's data key file, which the node saves at every start
// and after each change, and restores into an empty data directory. Both
// kinds require raft.nonvoter: raft's state stays in the data directory
// only. Empty keeps everything in the data directory.
type StorageConfig struct {
	// Parent is the parent instance's file store (`coterie bridge
	// --store`): vsock://3:PORT, unix:PATH or host:port. A nitro node
	// needs it.
	Parent string `yaml:"parent"`
	// Bucket is a Cloud Storage bucket, for a gcpcs node (which needs
	// it): the files go under NODE_ID/, with the workload's federated
	// identity, which the bucket must grant roles/storage.objectUser.
	Bucket string `yaml:"bucket"`
}

// ClusterConfig places the node among its peers.
type ClusterConfig struct {
	// Location labels the node in the member table, such as
	// "cloud:azure-westeurope" or "onprem:dc2".
	Location string `yaml:"location"`
	// JoinTokenFile names a file holding a join token. On first start
	// (no raft state yet) `node run` joins the cluster it names instead of
	// bootstrapping; `node join` does the same and exits.
	JoinTokenFile string `yaml:"join_token_file"`
	// Policy is the attestation policy: the enclave identities allowed in
	// the cluster. A bootstrapping node records it in the member table
	// (`node cluster policy` changes it later); a joining node accepts the
	// keyring only from a member it allows. Empty means this node's own
	// enclave kind and code measurement.
	Policy []PolicyRule `yaml:"policy"`
	// UnverifiableJoinKinds are the kinds of member this node joins
	// through without checking their evidence, because its build cannot:
	// a nitro or gcpcs build cannot check SGX quotes (they need the host's
	// DCAP collateral), so such a node joins a cluster of SGX voters with
	// [sgx]. It then trusts the join token's pin of the member's key: whoever
	// hands it the token chooses the cluster it joins (it brings no secret
	// there). The member still checks this node's evidence.
	UnverifiableJoinKinds []string `yaml:"unverifiable_join_kinds,omitempty"`
}

// unverifiableKinds returns UnverifiableJoinKinds parsed; Validate has
// checked them.
func (c ClusterConfig) unverifiableKinds() []enclave.Kind {
	var out []enclave.Kind
	for _, s := range c.UnverifiableJoinKinds {
		if k, err := enclave.ParseKind(s); err == nil {
			out = append(out, k)
		}
	}
	return out
}

// PolicyRule admits enclave identities of one kind: an exact code
// measurement, or a signer and product, or both (hex). The admin API and
// `node cluster policy` carry rules in this shape too, as JSON and YAML.
type PolicyRule struct {
	Kind               string `yaml:"kind" json:"kind"`
	Measurement        string `yaml:"measurement,omitempty" json:"measurement,omitempty"`
	Signer             string `yaml:"signer,omitempty" json:"signer,omitempty"`
	Product            string `yaml:"product,omitempty" json:"product,omitempty"`
	MinSecurityVersion uint32 `yaml:"min_security_version,omitempty" json:"min_security_version,omitempty"`
	AllowDebug         bool   `yaml:"allow_debug,omitempty" json:"allow_debug,omitempty"`
	// PCRs pins a Nitro enclave's PCR1 to PCR4, hex by index; PCR0 is
	// the measurement and PCR8 the signer.
	PCRs map[uint32]string `yaml:"pcrs,omitempty" json:"pcrs,omitempty"`
	// Issuer is, for a confidential-space rule, the https URL of the
	// attestation service whose tokens it admits; empty means Google's
	// (gcpcs.GoogleIssuer). It must equal the tokens' iss exactly.
	Issuer string `yaml:"issuer,omitempty" json:"issuer,omitempty"`
	// HardwareModels are, for a confidential-space rule, the hwmodel
	// values it admits; empty means GCP_AMD_SEV and GCP_INTEL_TDX.
	HardwareModels []string `yaml:"hardware_models,omitempty" json:"hardware_models,omitempty"`
}

// AdminConfig configures the admin HTTP API.
type AdminConfig struct {
	// Listen is the admin API's address. The default is loopback; the API
	// serves health and metrics without authentication, and the status,
	// pairing, the user list and the cluster operations with the admin
	// token. In production mode a TCP address off loopback needs TLS.
	// vsock://:PORT or unix:PATH serve only the parent instance or the
	// machine's users, as loopback does.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are PEM files of the admin API's certificate
	// (chain) and private key. Set, the API serves HTTPS with TLS 1.3 only,
	// and the node commands trust exactly that certificate.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// tls reports whether the admin API serves TLS.
func (a AdminConfig) tls() bool { return a.TLSCert != "" }

// SessionsConfig bounds the node's concurrent work.
type SessionsConfig struct {
	// Capacity is how many requests the node works on at once; a node at
	// capacity claims nothing new, so load spreads across the cluster.
	Capacity int `yaml:"capacity"`
}

// RefreshConfig schedules proactive refreshes of the API users' MPC key
// shares: new shares of the same key, made with the cloud co-signers, so
// that a share stolen before a refresh is useless after it (Node.Refresh).
// The leader runs the schedule; give every node the same settings.
type RefreshConfig struct {
	// Interval is how long each signer user's shares are kept before they
	// are refreshed, counted from pairing or the last refresh; 0 (the
	// default) never refreshes on a schedule.
	Interval time.Duration `yaml:"interval"`
	// Users overrides Interval per API user, named WORKSPACE/USER or by a
	// user id; 0 turns the schedule off for that user.
	Users map[string]time.Duration `yaml:"users,omitempty"`
}

// minRefreshInterval bounds a scheduled refresh's interval from below: a
// refresh costs seconds of CPU and burns the user's presignature pool.
const minRefreshInterval = time.Hour

func (c RefreshConfig) validate() []error {
	var errs []error
	check := func(what string, d time.Duration) {
		if d != 0 && d < minRefreshInterval {
			errs = append(errs, fmt.Errorf("%w: %s %s is neither 0 (off) nor at least %s", ErrInvalidConfig, what, d, minRefreshInterval))
		}
	}
	check("refresh.interval", c.Interval)
	for _, u := range slices.Sorted(maps.Keys(c.Users)) {
		check("refresh.users."+u, c.Users[u])
	}
	return errs
}

// interval returns the refresh interval of the user with record id rec
// and user id id.
func (c RefreshConfig) interval(rec, id string) time.Duration {
	if d, ok := c.Users[rec]; ok {
		return d
	}
	if d, ok := c.Users[id]; ok {
		return d
	}
	return c.Interval
}

// PresignConfig sizes the presignature pools.
type PresignConfig struct {
	// TargetDepth is how many ready presignatures each key's pool keeps at
	// least; the pool forecasts demand and may keep more, up to MaxDepth.
	TargetDepth int `yaml:"target_depth"`
	// MaxDepth caps each pool; 0 turns background presigning off.
	MaxDepth int `yaml:"max_depth"`
	// Workers bounds the presignatures made at once, across keys. Each
	// takes seconds of CPU.
	Workers int `yaml:"workers"`
}

// CallbackConfig says how to reach the customer's callback handler. With
// an empty URL every request is approved automatically.
type CallbackConfig struct {
	// URL is the handler's base URL: https, or http to a loopback host.
	URL string `yaml:"url"`
	// HandlerPublicKey is the PEM file of the key the handler signs its
	// answers with (RSA or ECDSA P-256). Required with URL.
	HandlerPublicKey string `yaml:"handler_public_key"`
	// CAFile is a PEM bundle that verifies an https handler; empty uses the
	// system's roots.
	CAFile string `yaml:"ca_file"`
	// Timeout bounds one attempt.
	Timeout time.Duration `yaml:"timeout"`
	// RetryAttempts is the budget of attempts per request, the first
	// included, for RETRY answers and an unreachable handler.
	RetryAttempts int `yaml:"retry_attempts"`
	// RetryInterval is the wait between attempts, before jitter.
	RetryInterval time.Duration `yaml:"retry_interval"`
	// MaxAnswerAge bounds the age of an answer's iat when it arrives, so
	// that an old answer cannot be played back (callback.Config).
	MaxAnswerAge time.Duration `yaml:"max_answer_age"`
	// AllowAnswersWithoutIAT accepts answers that carry no iat, for
	// handlers that cannot send one.
	AllowAnswersWithoutIAT bool `yaml:"allow_answers_without_iat"`
	// RequireRequestTokenHash refuses answers that do not echo the hash of
	// the request token (the reference handler does; protocol v2 handlers
	// do not).
	RequireRequestTokenHash bool `yaml:"require_request_token_hash"`
}

// LogConfig configures the logger the node builds when Config.Logger is
// nil.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
	// File receives the logs; empty means standard error.
	File string `yaml:"file"`
}

// DefaultConfig returns the defaults: development mode, the sim enclave,
// a single bootstrapping voter on 127.0.0.1:7000, the admin API on
// 127.0.0.1:7080, 64 sessions, pools of 4 presignatures made by one
// worker, no callback handler (30 s timeout, 20 tries 3 minutes apart and
// answers at most 2 minutes old once one is set), a 10 s owner timeout
// and a 30 s shutdown grace. NodeID and DataDir must still be set.
func DefaultConfig() Config {
	return Config{
		Mode:     ModeDevelopment.String(),
		Enclave:  EnclaveConfig{Kind: enclave.KindSim.String(), KeyPolicy: enclave.KeyPolicyProduct.String()},
		Raft:     RaftConfig{Bind: "127.0.0.1:7000", Bootstrap: true},
		Admin:    AdminConfig{Listen: "127.0.0.1:7080"},
		Sessions: SessionsConfig{Capacity: 64},
		Presign:  PresignConfig{TargetDepth: 4, MaxDepth: 32, Workers: 1},
		Callback: CallbackConfig{
			Timeout:       30 * time.Second,
			RetryAttempts: 20,
			RetryInterval: 3 * time.Minute,
			MaxAnswerAge:  callback.DefaultConfig().MaxAnswerAge,
		},
		Log:           LogConfig{Level: "info", Format: "text"},
		Audit:         AuditConfig{RetainEntries: defaultAuditRetain},
		OwnerTimeout:  3 * time.Second,
		ShutdownGrace: 30 * time.Second,
	}
}

// ParseConfig decodes a YAML config over DefaultConfig and validates it.
// Unknown fields are errors, so that a misspelt setting is not silently
// ignored. Relative paths are resolved against baseDir.
func ParseConfig(data []byte, baseDir string) (Config, error) {
	cfg := DefaultConfig()
	if len(data) > maxConfigBytes {
		return Config{}, fmt.Errorf("%w: config larger than %d bytes", ErrInvalidConfig, maxConfigBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	cfg.resolvePaths(baseDir)
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// LoadConfig reads and parses a config file; relative paths in it are
// relative to the file's directory.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("node: config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return Config{}, fmt.Errorf("node: config: %w", err)
	}
	cfg, err := ParseConfig(data, filepath.Dir(path))
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func (c *Config) resolvePaths(base string) {
	if b, err := filepath.Abs(base); err == nil && base != "" {
		base = b
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) && base != "" {
			*p = filepath.Join(base, *p)
		}
	}
	abs(&c.DataDir)
	abs(&c.Enclave.SimPlatformKey)
	abs(&c.Callback.HandlerPublicKey)
	abs(&c.Callback.CAFile)
	abs(&c.Admin.TLSCert)
	abs(&c.Admin.TLSKey)
	abs(&c.Cluster.JoinTokenFile)
	abs(&c.Log.File)
}

// Validate reports every problem with c at once, each wrapped in
// ErrInvalidConfig. It also reads the files the config names (the callback
// handler's key and CA bundle, the admin API's certificate and key) and
// checks that they parse, so that a node never creates its data directory,
// raft state or keys and then stops on its config.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.NodeID == "" {
		bad("node_id is required")
	} else if len(c.NodeID) > 64 || strings.ContainsAny(c.NodeID, " \t\n/") {
		bad("node_id %q must be at most 64 characters without spaces or slashes", c.NodeID)
	}
	mode, err := ParseMode(c.Mode)
	if err != nil {
		errs = append(errs, err)
	}
	if c.DataDir == "" {
		bad("data_dir is required")
	}
	kind, err := enclave.ParseKind(c.Enclave.Kind)
	switch {
	case err != nil:
		bad("enclave.kind %q: %v", c.Enclave.Kind, err)
	case mode == ModeProduction && kind == enclave.KindSim:
		bad("mode production refuses enclave.kind sim, which protects nothing")
	case !slices.Contains(backend.Available(), kind):
		bad("enclave.kind %s: %v", kind, backend.CheckAvailable(kind))
	}
	if kind == enclave.KindNitro {
		if err := c.Enclave.Nitro.backend().Validate(); err != nil {
			bad("enclave.nitro: %v", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	if kind == enclave.KindConfidentialSpace {
		if err := c.Enclave.ConfidentialSpace.sealing().Validate(); err != nil {
			bad("enclave.confidential_space: %v", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	for _, problem := range c.Enclave.ConfidentialSpace.movedProblems() {
		bad("%s", problem)
	}
	if _, err := enclave.ParseKeyPolicy(c.Enclave.KeyPolicy); err != nil {
		bad("enclave.key_policy %q: %v", c.Enclave.KeyPolicy, err)
	}
	if bind, err := bridge.ParseAddr(c.Raft.Bind); err != nil {
		bad("raft.bind: %v", err)
	} else if bind.Kind != bridge.TCP && c.Raft.Advertise == "" {
		bad("raft.advertise is required: raft.bind %s is not an address peers can dial", c.Raft.Bind)
	}
	if c.Raft.Advertise != "" && !validHostPort(c.Raft.Advertise) {
		bad("raft.advertise %q is not host:port", c.Raft.Advertise)
	}
	if c.Raft.NonVoter && c.Raft.Bootstrap && c.Cluster.JoinTokenFile == "" {
		bad("raft.nonvoter: a non-voter cannot bootstrap a cluster; give it cluster.join_token_file (and raft.bootstrap: false)")
	}
	errs = append(errs, c.storageProblems(kind)...)
	if c.Network.EgressProxy != "" {
		if _, err := bridge.ParseAddr(c.Network.EgressProxy); err != nil {
			bad("network.egress_proxy: %v", err)
		}
	}
	errs = append(errs, c.Audit.validate()...)
	if len(c.Cluster.Location) > 128 {
		bad("cluster.location is longer than 128 bytes")
	}
	if _, err := c.Cluster.policy(); err != nil {
		bad("cluster.policy: %v", err)
	}
	for _, s := range c.Cluster.UnverifiableJoinKinds {
		if _, err := enclave.ParseKind(s); err != nil {
			bad("cluster.unverifiable_join_kinds: %q: %v", s, err)
		}
	}
	if _, err := c.Enclave.trustedPlatforms(); err != nil {
		bad("enclave.sim_trusted_platforms: %v", err)
	}
	if admin, err := bridge.ParseAddr(c.Admin.Listen); err != nil {
		bad("admin.listen: %v", err)
	} else if mode == ModeProduction && admin.Kind == bridge.TCP && !loopbackHostPort(c.Admin.Listen) && !c.Admin.tls() {
		bad("admin.listen %q is not loopback: in production the admin API serves other hosts only over TLS (admin.tls_cert, admin.tls_key)", c.Admin.Listen)
	}
	errs = append(errs, c.Admin.tlsProblems()...)
	if c.Sessions.Capacity < 1 || c.Sessions.Capacity > 100000 {
		bad("sessions.capacity %d is not in [1, 100000]", c.Sessions.Capacity)
	}
	if c.Presign.TargetDepth < 0 || c.Presign.MaxDepth > 10000 || c.Presign.TargetDepth > c.Presign.MaxDepth {
		bad("presign depths need 0 <= target_depth (%d) <= max_depth (%d) <= 10000", c.Presign.TargetDepth, c.Presign.MaxDepth)
	}
	if c.Presign.Workers < 1 || c.Presign.Workers > 256 {
		bad("presign.workers %d is not in [1, 256]", c.Presign.Workers)
	}
	errs = append(errs, c.Workspace.validate()...)
	errs = append(errs, c.Refresh.validate()...)
	errs = append(errs, c.Recovery.validate()...)
	if cbErrs := c.Callback.validate(); len(cbErrs) > 0 {
		errs = append(errs, cbErrs...)
	} else {
		errs = append(errs, c.Callback.fileProblems()...)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level %q is not debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format %q is not text or json", c.Log.Format)
	}
	if c.OwnerTimeout < time.Second {
		bad("owner_timeout %v is shorter than 1s", c.OwnerTimeout)
	}
	if c.ShutdownGrace < 0 || c.ShutdownGrace > MaxShutdownGrace {
		bad("shutdown_grace %v is not in [0s, %v]", c.ShutdownGrace, MaxShutdownGrace)
	}
	return errors.Join(errs...)
}

func (c CallbackConfig) validate() []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.URL != "" {
		if err := callback.CheckURL(c.URL); err != nil {
			bad("callback.url: %v", err)
		}
		if c.HandlerPublicKey == "" {
			bad("callback.handler_public_key is required with callback.url")
		}
	}
	// The callback client's own bounds, so that the two cannot disagree.
	if err := c.clientConfig().Validate(); err != nil {
		bad("callback timeout, max_answer_age or retries: %v", err)
	}
	return errs
}

// fileProblems checks the handler key and CA files the callback client
// will read at start: they exist and parse.
func (c CallbackConfig) fileProblems() []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.HandlerPublicKey != "" {
		if _, err := loadHandlerKey(c.HandlerPublicKey); err != nil {
			bad("callback.handler_public_key: %v", err)
		}
	}
	if c.CAFile != "" {
		if _, err := loadCAFile(c.CAFile); err != nil {
			bad("callback.ca_file: %v", err)
		}
	}
	return errs
}

// clientConfig is the callback client's config as these settings make
// it, without the parts the node adds at start (key, URL, clock, logger).
func (c CallbackConfig) clientConfig() callback.Config {
	cb := callback.DefaultConfig()
	cb.Timeout = c.Timeout
	cb.Retry = c.backoff()
	cb.MaxAnswerAge = c.MaxAnswerAge
	cb.AllowAnswersWithoutIAT = c.AllowAnswersWithoutIAT
	cb.RequireRequestTokenHash = c.RequireRequestTokenHash
	return cb
}

func (c CallbackConfig) backoff() callback.Backoff {
	b := callback.DefaultBackoff()
	b.MaxAttempts = c.RetryAttempts
	b.Initial, b.Max, b.Multiplier = c.RetryInterval, c.RetryInterval, 1
	return b
}

// loadHandlerKey reads the callback handler's public key file.
func loadHandlerKey(path string) (crypto.PublicKey, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return callback.ParsePublicKeyPEM(pem)
}

// loadCAFile reads a PEM bundle of CA certificates.
func loadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// tlsProblems checks that the admin API's certificate and key come
// together and load.
func (a AdminConfig) tlsProblems() []error {
	switch {
	case a.TLSCert == "" && a.TLSKey == "":
		return nil
	case a.TLSCert == "" || a.TLSKey == "":
		return []error{fmt.Errorf("%w: admin.tls_cert and admin.tls_key are set together or not at all", ErrInvalidConfig)}
	}
	if _, err := a.loadTLS(); err != nil {
		return []error{fmt.Errorf("%w: admin.tls_cert, admin.tls_key: %v", ErrInvalidConfig, err)}
	}
	return nil
}

// loadTLS loads the admin API's certificate and key.
func (a AdminConfig) loadTLS() (tls.Certificate, error) {
	return tls.LoadX509KeyPair(a.TLSCert, a.TLSKey)
}

// loopbackHostPort reports whether a listen address is on loopback only.
// An empty or unspecified host listens on every interface.
func loopbackHostPort(s string) bool {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// policy returns the configured attestation policy; an empty one (the
// default: this node's own identity) has no rules.
func (c ClusterConfig) policy() (enclave.Policy, error) {
	var p enclave.Policy
	for i, r := range c.Policy {
		kind, err := enclave.ParseKind(r.Kind)
		if err != nil {
			return p, fmt.Errorf("rule %d: %w", i, err)
		}
		rule := enclave.Rule{Kind: kind, MinSecurityVersion: r.MinSecurityVersion, AllowDebug: r.AllowDebug,
			Issuer: r.Issuer, HardwareModels: slices.Clone(r.HardwareModels)}
		for _, f := range []struct {
			name string
			hex  string
			dst  *[]byte
		}{{"measurement", r.Measurement, &rule.Measurement}, {"signer", r.Signer, &rule.Signer}, {"product", r.Product, &rule.Product}} {
			if f.hex == "" {
				continue
			}
			b, err := hex.DecodeString(f.hex)
			if err != nil {
				return p, fmt.Errorf("rule %d: %s is not hex", i, f.name)
			}
			*f.dst = b
		}
		for pcr, h := range r.PCRs {
			b, err := hex.DecodeString(h)
			if err != nil {
				return p, fmt.Errorf("rule %d: PCR%d is not hex", i, pcr)
			}
			if rule.PCRs == nil {
				rule.PCRs = make(map[uint32][]byte)
			}
			rule.PCRs[pcr] = b
		}
		p.Allow = append(p.Allow, rule)
	}
	if len(p.Allow) > 0 {
		if err := p.Validate(); err != nil {
			return p, err
		}
	}
	return p, nil
}

// trustedPlatforms decodes the sim's trusted platform keys.
func (e EnclaveConfig) trustedPlatforms() ([]ed25519.PublicKey, error) {
	var out []ed25519.PublicKey
	for i, s := range e.SimTrustedPlatforms {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("entry %d is not a hex Ed25519 public key", i)
		}
		out = append(out, ed25519.PublicKey(b))
	}
	return out, nil
}

func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	return err == nil && port != "" && (host != "" || s[0] == ':')
}

// mode returns the parsed mode of a validated config.
func (c Config) mode() Mode {
	m, _ := ParseMode(c.Mode)
	return m
}

// logger returns the configured logger, building one from Log when
// Logger is nil. The returned closer closes a log file.
func (c Config) logger() (*slog.Logger, io.Closer, error) {
	if c.Logger != nil {
		return c.Logger, io.NopCloser(nil), nil
	}
	var w io.Writer = os.Stderr
	var closer io.Closer = io.NopCloser(nil)
	if c.Log.File != "" {
		f, err := os.OpenFile(c.Log.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("node: log file: %w", err)
		}
		w, closer = f, f
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), closer, nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), closer, nil
}

// storageProblems checks the storage section against the enclave kind: a
// Nitro enclave's and a Confidential Space workload's files live in
// memory, so those nodes keep their lasting files elsewhere and are
// non-voters.
func (c Config) storageProblems(kind enclave.Kind) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	s := c.Storage
	if s.Parent != "" {
		if _, err := bridge.ParseAddr(s.Parent); err != nil {
			bad("storage.parent: %v", err)
		}
	}
	switch {
	case s.Parent != "" && s.Bucket != "":
		bad("storage.parent and storage.bucket: give one")
	case s.Bucket != "" && kind != enclave.KindConfidentialSpace:
		bad("storage.bucket is for enclave.kind gcpcs, whose workload identity reaches it")
	case kind == enclave.KindNitro && s.Parent == "":
		bad("enclave.kind nitro needs storage.parent: an enclave's data directory is in memory")
	case kind == enclave.KindConfidentialSpace && s.Bucket == "":
		bad("enclave.kind gcpcs needs storage.bucket: a Confidential Space workload's data directory is in memory")
	}
	if (s.Parent != "" || s.Bucket != "") && !c.Raft.NonVoter {
		bad("storage.parent or storage.bucket needs raft.nonvoter: true: a data directory that does not outlive the node loses raft's state, which a voter must keep")
	}
	return errs
}
