package node

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/coterie-mpc/coterie/clock"
)

func TestExampleConfigParses(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data, "/etc/coterie")
	if err != nil {
		t.Fatal(err)
	}
	// The example shows the defaults, so it must equal them apart from the
	// required fields it sets.
	want := DefaultConfig()
	want.NodeID = "node-1"
	want.DataDir = "/etc/coterie/node-1-data"
	want.Cluster.Policy = []PolicyRule{}
	want.Cluster.UnverifiableJoinKinds = []string{}
	want.Enclave.SimTrustedPlatforms = []string{}
	want.Recovery.Recipients = []string{}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("example config differs from the defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestParseConfig(t *testing.T) {
	const base = "node_id: n1\ndata_dir: /d\n"
	tests := []struct {
		name string
		yaml string
		// want lists substrings every one of which must be in the error;
		// none means the config is valid.
		want  []string
		check func(t *testing.T, c Config)
	}{
		{name: "minimal", yaml: base, check: func(t *testing.T, c Config) {
			if c.Callback.Timeout != 30*time.Second || c.Callback.RetryAttempts != 20 || c.Callback.RetryInterval != 3*time.Minute {
				t.Errorf("callback defaults: %+v", c.Callback)
			}
			if c.Admin.Listen != "127.0.0.1:7080" || !c.Raft.Bootstrap {
				t.Errorf("defaults: %+v %+v", c.Admin, c.Raft)
			}
		}},
		{name: "empty", yaml: "", want: []string{"node_id is required", "data_dir is required"}},
		{name: "unknown field", yaml: base + "colour: blue\n", want: []string{"colour"}},
		{name: "unknown nested field", yaml: base + "callback:\n  urll: x\n", want: []string{"urll"}},
		{name: "production refuses sim", yaml: base + "mode: production\n", want: []string{"refuses enclave.kind sim"}},
		{name: "bad mode", yaml: base + "mode: staging\n", want: []string{"staging"}},
		{name: "bad enclave", yaml: base + "enclave:\n  kind: tpm\n  key_policy: x\n", want: []string{"enclave.kind", "enclave.key_policy"}},
		{name: "durations", yaml: base + "callback:\n  timeout: 5s\n  retry_interval: 1m\nowner_timeout: 3s\n", check: func(t *testing.T, c Config) {
			if c.Callback.Timeout != 5*time.Second || c.Callback.RetryInterval != time.Minute || c.OwnerTimeout != 3*time.Second {
				t.Errorf("durations: %+v %v", c.Callback, c.OwnerTimeout)
			}
		}},
		{name: "bad duration", yaml: base + "callback:\n  timeout: soon\n", want: []string{"soon"}},
		{name: "refresh too often", yaml: base + "refresh:\n  interval: 10m\n  users:\n    default/u1: 30s\n    default/u2: 0s\n",
			want: []string{"refresh.interval 10m0s", "refresh.users.default/u1 30s"}},
		{name: "all problems at once", yaml: base + "raft:\n  bind: nope\nadmin:\n  listen: x\nsessions:\n  capacity: 0\npresign:\n  workers: 0\n  target_depth: 40\n  max_depth: 8\nlog:\n  level: loud\n  format: xml\nowner_timeout: 1ms\n",
			want: []string{"raft.bind", "admin.listen", "sessions.capacity", "presign.workers", "target_depth", "log.level", "log.format", "owner_timeout"}},
		{name: "callback url needs key", yaml: base + "callback:\n  url: http://127.0.0.1:8090\n", want: []string{"handler_public_key is required"}},
		{name: "callback url scheme", yaml: base + "callback:\n  url: ftp://x\n  handler_public_key: k.pem\n", want: []string{"callback.url"}},
		{name: "static peers are gone", yaml: base + "raft:\n  peers:\n    - id: n1\n      address: 127.0.0.1:1\n", want: []string{"peers not found"}},
		{name: "cluster policy", yaml: base + "cluster:\n  policy:\n    - kind: tdx\n    - kind: sgx\n      signer: zz\n", want: []string{"cluster.policy", "rule 0"}},
		{name: "sim trusted platforms", yaml: base + "enclave:\n  sim_trusted_platforms: [abcd]\n", want: []string{"enclave.sim_trusted_platforms: entry 0"}},
		{name: "relative paths", yaml: "node_id: n1\ndata_dir: d\nlog:\n  file: node.log\n", check: func(t *testing.T, c Config) {
			if c.DataDir != "/etc/c/d" || c.Log.File != "/etc/c/node.log" {
				t.Errorf("paths not resolved: %q %q", c.DataDir, c.Log.File)
			}
		}},
		{name: "missing handler key file", yaml: base + "callback:\n  url: https://h.example\n  handler_public_key: k.pem\n",
			want: []string{"callback.handler_public_key", "/etc/c/k.pem"}},
		{name: "missing ca file", yaml: base + "callback:\n  ca_file: ca.pem\n", want: []string{"callback.ca_file"}},
		{name: "callback client bounds", yaml: base + "callback:\n  timeout: 11m\n  retry_attempts: 20000\n  retry_interval: 25h\n",
			want: []string{"timeout 11m0s not in", "max attempts 20000", "initial delay 25h0m0s"}},
		{name: "enclave not built in", yaml: base + "enclave:\n  kind: sgx\n", want: []string{"enclave.kind sgx", "needs a build with -tags ego"}},
		{name: "nitro not runnable", yaml: base + "enclave:\n  kind: nitro\n", want: []string{"enclave.kind nitro", "built with -tags nitro", "enclave.nitro", "region", "kms_key_id is required"}},
		{name: "nitro settings", yaml: base + "enclave:\n  kind: nitro\n  nitro:\n    region: eu-west-1\n    kms_key_id: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab\n    kms_proxy: 10.0.0.1:8000\n",
			want: []string{"enclave.nitro", "in region us-east-1, not eu-west-1", "kms_proxy"}},
		{name: "gcpcs not runnable", yaml: base + "enclave:\n  kind: gcpcs\n", want: []string{"enclave.kind confidential-space", "built with -tags gcpcs",
			"enclave.confidential_space", "project", "workload_identity_provider"}},
		{name: "gcpcs settings", yaml: base + "enclave:\n  kind: gcpcs\n  confidential_space:\n    project: coterie-prod\n    location: global\n" +
			"    key_ring: r\n    key: k\n    workload_identity_provider: //iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/pool/providers/prov\n" +
			"    kms_endpoint: http://127.0.0.1:1\n", want: []string{"enclave.confidential_space", "kms_endpoint", "must be https"}},
		// The verifier's trust anchors moved to the cluster's policy: a
		// config that still sets them is refused, and told where they went.
		{name: "confidential space trust anchors moved", yaml: base + "enclave:\n  confidential_space:\n    issuer: https://attest.example\n" +
			"    audience: https://coterie.test\n    hardware_models: [GCP_AMD_SEV]\n",
			want: []string{"enclave.confidential_space.issuer moved: set issuer on the confidential-space rules of the cluster's attestation policy (cluster.policy",
				"enclave.confidential_space.hardware_models moved: set hardware_models on the confidential-space rules",
				"enclave.confidential_space.audience is no longer set"}},
		{name: "confidential space policy rule", yaml: base + "cluster:\n  policy:\n    - kind: confidential-space\n      measurement: " + strings.Repeat("ab", 32) +
			"\n      issuer: https://attest.example\n      hardware_models: [GCP_INTEL_TDX]\n",
			check: func(t *testing.T, c Config) {
				p, err := c.Cluster.policy()
				if err != nil || len(p.Allow) != 1 || p.Allow[0].Issuer != "https://attest.example" || !slices.Equal(p.Allow[0].HardwareModels, []string{"GCP_INTEL_TDX"}) {
					t.Errorf("policy %+v, %v", p, err)
				}
			}},
		{name: "confidential space policy rule over http", yaml: base + "cluster:\n  policy:\n    - kind: confidential-space\n      measurement: " + strings.Repeat("ab", 32) +
			"\n      issuer: http://attest.example\n",
			want: []string{"cluster.policy", `issuer "http://attest.example" is not an https URL`}},
		{name: "nitro policy rule", yaml: base + "cluster:\n  policy:\n    - kind: nitro\n      measurement: " + strings.Repeat("ab", 48) +
			"\n      pcrs: {2: " + strings.Repeat("cd", 48) + ", 9: " + strings.Repeat("cd", 48) + ", 1: zz}\n",
			want: []string{"cluster.policy", "PCR1 is not hex"}},
		{name: "nitro policy rule PCR9", yaml: base + "cluster:\n  policy:\n    - kind: nitro\n      measurement: " + strings.Repeat("ab", 48) +
			"\n      pcrs: {9: " + strings.Repeat("cd", 48) + "}\n",
			want: []string{"cluster.policy", "PCR9 is not one a rule pins"}},
		{name: "admin tls half", yaml: base + "admin:\n  tls_cert: c.pem\n", want: []string{"set together or not at all"}},
		{name: "admin tls files", yaml: base + "admin:\n  tls_cert: c.pem\n  tls_key: k.pem\n", want: []string{"admin.tls_cert, admin.tls_key", "/etc/c/c.pem"}},
		{name: "production admin off loopback", yaml: base + "mode: production\nenclave:\n  kind: sgx\nadmin:\n  listen: 0.0.0.0:7080\n",
			want: []string{`admin.listen "0.0.0.0:7080" is not loopback`}},
		{name: "production admin on every interface", yaml: base + "mode: production\nenclave:\n  kind: sgx\nadmin:\n  listen: :7080\n",
			want: []string{`admin.listen ":7080" is not loopback`}},
		{name: "bad node id", yaml: "node_id: a/b\ndata_dir: /d\n", want: []string{"node_id"}},
		{name: "shutdown grace", yaml: base + "shutdown_grace: 0s\n", check: func(t *testing.T, c Config) {
			if c.ShutdownGrace != 0 || DefaultConfig().ShutdownGrace != 30*time.Second {
				t.Errorf("shutdown_grace %v, default %v", c.ShutdownGrace, DefaultConfig().ShutdownGrace)
			}
		}},
		{name: "workspace routes", yaml: base + "workspace:\n  routes:\n    ws.example.com:7400: 127.0.0.1:9400\n", check: func(t *testing.T, c Config) {
			if c.Workspace.Routes["ws.example.com:7400"] != "127.0.0.1:9400" {
				t.Errorf("routes: %v", c.Workspace.Routes)
			}
		}},
		{name: "recovery recipients", yaml: base + "recovery:\n  recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p]\n", check: func(t *testing.T, c Config) {
			if len(c.Recovery.Recipients) != 1 {
				t.Errorf("recipients %v", c.Recovery.Recipients)
			}
		}},
		{name: "recovery recipients are age keys", yaml: base + "recovery:\n  recipients: [ssh-ed25519 AAAA]\n", want: []string{`recovery.recipients: "ssh-ed25519 AAAA" is not an age X25519 recipient`}},
		{name: "workspace routes need host:port", yaml: base + "workspace:\n  routes:\n    ws.example.com: 127.0.0.1:9400\n", want: []string{`workspace.routes: "ws.example.com" is not host:port`}},
		{name: "enclave networking", yaml: base + "raft:\n  bind: vsock://:7000\n  advertise: 10.0.1.5:7000\nadmin:\n  listen: vsock://:7080\nnetwork:\n  egress_proxy: vsock://3:8002\n",
			check: func(t *testing.T, c Config) {
				if nw := c.Network.net(); nw.Egress == nil || nw.Egress.String() != "vsock://3:8002" {
					t.Errorf("egress %+v", nw.Egress)
				}
			}},
		{name: "enclave networking needs advertise", yaml: base + "raft:\n  bind: vsock://:7000\nnetwork:\n  egress_proxy: http://proxy:3128\n",
			want: []string{"raft.advertise is required", "network.egress_proxy", "http://proxy:3128"}},
		{name: "parent storage needs a non-voter", yaml: base + "storage:\n  parent: vsock://3:8003\n",
			want: []string{"storage.parent or storage.bucket needs raft.nonvoter: true"}},
		{name: "storage fits the enclave", yaml: base + "storage:\n  parent: unix:/p\n  bucket: b\n", want: []string{"give one"}},
		{name: "bucket is for gcpcs", yaml: base + "storage:\n  bucket: coterie-nodes\nraft:\n  nonvoter: true\n  bootstrap: false\n",
			want: []string{"storage.bucket is for enclave.kind gcpcs"}},
		{name: "a non-voter cannot bootstrap", yaml: base + "raft:\n  nonvoter: true\nstorage:\n  parent: vsock://3\n",
			want: []string{"raft.nonvoter: a non-voter cannot bootstrap", "storage.parent"}},
		{name: "enclave node", yaml: base + "raft:\n  nonvoter: true\n  bootstrap: false\n  bind: vsock://:7000\n  advertise: 10.0.1.5:7000\n" +
			"storage:\n  parent: vsock://3:8003\ncluster:\n  join_token_file: /run/join\n",
			check: func(t *testing.T, c Config) {
				if !c.Raft.NonVoter || c.Storage.Parent != "vsock://3:8003" {
					t.Errorf("raft %+v storage %+v", c.Raft, c.Storage)
				}
			}},
		{name: "unverifiable join kinds", yaml: base + "cluster:\n  unverifiable_join_kinds: [sgx, tpm]\n", want: []string{`cluster.unverifiable_join_kinds: "tpm"`}},
		{name: "shutdown grace too long", yaml: base + "shutdown_grace: 6m\n", want: []string{"shutdown_grace 6m0s is not in [0s, 5m0s]"}},
		{name: "shutdown grace negative", yaml: base + "shutdown_grace: -1s\n", want: []string{"shutdown_grace -1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.yaml), "/etc/c")
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tt.check != nil {
					tt.check(t, c)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not match ErrInvalidConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadConfigRelativeToFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.yaml")
	writeHandlerKey(t, filepath.Join(dir, "handler.pem"))
	conf := "node_id: n1\ndata_dir: data\ncallback:\n  url: https://h.example\n  handler_public_key: handler.pem\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != filepath.Join(dir, "data") || c.Callback.HandlerPublicKey != filepath.Join(dir, "handler.pem") {
		t.Fatalf("paths not resolved: %q %q", c.DataDir, c.Callback.HandlerPublicKey)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing file loaded")
	}
}

// TestAdminOffLoopbackWithTLS accepts a production admin API off loopback
// once it has a certificate and key, and refuses a key that does not match
// the certificate.
func TestAdminOffLoopbackWithTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeAdminCert(t, dir)
	conf := func(keyFile string) string {
		return "node_id: n1\ndata_dir: d\nmode: production\nenclave:\n  kind: sgx\nadmin:\n  listen: 0.0.0.0:7080\n" +
			"  tls_cert: " + cert + "\n  tls_key: " + keyFile + "\n"
	}
	_, err := ParseConfig([]byte(conf(key)), dir)
	// The default build has no sgx backend, which is the only complaint.
	if err == nil || strings.Contains(err.Error(), "admin") || !strings.Contains(err.Error(), "enclave.kind sgx") {
		t.Fatalf("production admin API with TLS: %v", err)
	}
	_, otherKey := writeAdminCert(t, t.TempDir())
	if _, err := ParseConfig([]byte(conf(otherKey)), dir); err == nil || !strings.Contains(err.Error(), "admin.tls_cert, admin.tls_key") {
		t.Fatalf("mismatched key: %v", err)
	}
}

func TestModeString(t *testing.T) {
	for _, m := range []Mode{ModeDevelopment, ModeProduction} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("%v round trip: %v %v", m, got, err)
		}
	}
	if ModeUnknown.String() != "unknown" {
		t.Error(ModeUnknown.String())
	}
}

// FuzzParseConfig feeds arbitrary YAML to the config parser: it must not
// panic, and a config it accepts must encode and parse back to itself.
func FuzzParseConfig(f *testing.F) {
	if data, err := os.ReadFile("testdata/example.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("node_id: n1\ndata_dir: /d\n"))
	f.Add([]byte("node_id: n1\ndata_dir: /d\ncluster:\n  location: onprem:dc1\n  policy: [{kind: sim, measurement: '00ff'}]\n"))
	f.Add([]byte("[1, 2"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data, "/base")
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not match ErrInvalidConfig", err)
			}
			return
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := ParseConfig(out, "/base")
		if err != nil {
			t.Fatalf("re-parse of an accepted config: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(normalize(c), normalize(c2)) {
			t.Fatalf("round trip differs:\n%+v\n%+v", c, c2)
		}
	})
}

// normalize makes empty and nil lists equal.
func normalize(c Config) Config {
	if len(c.Cluster.Policy) == 0 {
		c.Cluster.Policy = nil
	}
	if len(c.Enclave.SimTrustedPlatforms) == 0 {
		c.Enclave.SimTrustedPlatforms = nil
	}
	if len(c.Recovery.Recipients) == 0 {
		c.Recovery.Recipients = nil
	}
	if len(c.Cluster.UnverifiableJoinKinds) == 0 {
		c.Cluster.UnverifiableJoinKinds = nil
	}
	if len(c.Enclave.ConfidentialSpace.HardwareModels) == 0 {
		c.Enclave.ConfidentialSpace.HardwareModels = nil
	}
	for i := range c.Cluster.Policy {
		if len(c.Cluster.Policy[i].PCRs) == 0 {
			c.Cluster.Policy[i].PCRs = nil
		}
		if len(c.Cluster.Policy[i].HardwareModels) == 0 {
			c.Cluster.Policy[i].HardwareModels = nil
		}
	}
	return c
}

// TestCallbackURLValidated: the node refuses at validation, before it
// creates anything, every handler URL the callback client would refuse,
// with callback.CheckURL's reason.
func TestCallbackURLValidated(t *testing.T) {
	tests := []struct {
		url  string
		want string // "" means valid
	}{
		{"https://handler.example.com/cb", ""},
		{"http://127.0.0.1:8090", ""},
		{"http://localhost:8090", ""},
		{"http://[::1]:8090", ""},
		{"http://handler.example.com", "not loopback"},
		{"http://10.0.0.7:8090", "not loopback"},
		{"https://u:secret@handler.example.com", "user info"},
		{"https://handler.example.com/?token=x", "query"},
		{"ftp://127.0.0.1", "scheme"},
		{"not a url", "scheme"},
	}
	dir := t.TempDir()
	writeHandlerKey(t, filepath.Join(dir, "k.pem"))
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			yaml := fmt.Sprintf("node_id: n1\ndata_dir: /d\ncallback:\n  url: %q\n  handler_public_key: k.pem\n", tc.url)
			_, err := ParseConfig([]byte(yaml), dir)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "callback.url") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want callback.url: …%s…", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error quotes the URL's password: %v", err)
			}
		})
	}
}

// TestCallbackAnswerSettings: the answer freshness and binding settings
// parse, default to the callback client's defaults, and are bounded.
func TestCallbackAnswerSettings(t *testing.T) {
	const base = "node_id: n1\ndata_dir: /d\n"
	c, err := ParseConfig([]byte(base), "/etc/c")
	if err != nil {
		t.Fatal(err)
	}
	if c.Callback.MaxAnswerAge != 2*time.Minute || c.Callback.AllowAnswersWithoutIAT || c.Callback.RequireRequestTokenHash {
		t.Fatalf("defaults: %+v", c.Callback)
	}
	c, err = ParseConfig([]byte(base+"callback:\n  max_answer_age: 30s\n  allow_answers_without_iat: true\n  require_request_token_hash: true\n"), "/etc/c")
	if err != nil {
		t.Fatal(err)
	}
	if c.Callback.MaxAnswerAge != 30*time.Second || !c.Callback.AllowAnswersWithoutIAT || !c.Callback.RequireRequestTokenHash {
		t.Fatalf("parsed: %+v", c.Callback)
	}
	_, err = ParseConfig([]byte(base+"callback:\n  max_answer_age: 0s\n  timeout: 11m\n"), "/etc/c")
	for _, w := range []string{"max answer age 0s", "timeout 11m0s"} {
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %s", err, w)
		}
	}
}

// TestCallbackConfigWiring: the node hands its callback settings to the
// callback client.
func TestCallbackConfigWiring(t *testing.T) {
	cfg, err := ParseConfig([]byte("node_id: n1\ndata_dir: /d\ncallback:\n  timeout: 7s\n  max_answer_age: 45s\n  allow_answers_without_iat: true\n  require_request_token_hash: true\n"), "/etc/c")
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{cfg: cfg, clock: clock.Real(), log: slog.New(slog.DiscardHandler), base: slog.New(slog.DiscardHandler)}
	cb, err := n.callbackConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cb.Timeout != 7*time.Second || cb.MaxAnswerAge != 45*time.Second || !cb.AllowAnswersWithoutIAT || !cb.RequireRequestTokenHash {
		t.Fatalf("callback config %+v", cb)
	}
}
