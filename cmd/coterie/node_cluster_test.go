package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/node"
)

// TestNodeClusterCommands runs the cluster commands against an
// in-process node: the join token alone on standard output, the member
// list as a table and as JSON, the policy shown and replaced from a file
// and from standard input, and the refusals a single node gives, each
// explained.
func TestNodeClusterCommands(t *testing.T) {
	e := startInProcessNode(t, "cluster:\n  location: onprem:test\n")

	out, stderr, err := runIO(t, "", "node", "cluster", "join-token", "--config", e.config, "--ttl", "10m")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("join-token printed more than the token:\n%s", out)
	}
	ticket, err := cluster.ParseJoinToken(out)
	if err != nil {
		t.Fatalf("stdout is not a join token: %v", err)
	}
	if until := time.Until(ticket.ExpiresAt); until < 9*time.Minute || until > 11*time.Minute {
		t.Errorf("the token expires in %v, want 10m", until)
	}
	for _, want := range []string{"join token " + ticket.TokenID, "cluster " + ticket.ClusterID, "through member n1", "secret"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, strings.TrimSpace(out)) {
		t.Error("stderr repeats the token")
	}
	if _, _, err := runIO(t, "", "node", "cluster", "join-token", "--config", e.config, "--ttl", "800h"); err == nil ||
		!strings.Contains(err.Error(), "lifetime") {
		t.Errorf("join-token --ttl 800h: %v", err)
	}

	out, _, err = runIO(t, "", "node", "cluster", "list", "--config", e.config)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cluster " + ticket.ClusterID + " as n1 sees it (leader: n1; it leads", "NODE", "LIVENESS",
		"n1", "leader", "self", "onprem:test", "sim", "0 (0/64 sessions)", "(bootstrapped)"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	out, _, err = runIO(t, "", "node", "cluster", "list", "--config", e.config, "--json")
	var v node.ClusterView
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || len(v.Members) != 1 || v.Members[0].Role != node.RoleLeader {
		t.Fatalf("list --json: %v\n%s", err, out)
	}

	// The policy round-trips through the file format it prints.
	out, _, err = runIO(t, "", "node", "cluster", "policy", "--config", e.config)
	var rules []node.PolicyRule
	if err != nil || yaml.Unmarshal([]byte(out), &rules) != nil || len(rules) != 1 || rules[0].Kind != "sim" {
		t.Fatalf("policy: %v\n%s", err, out)
	}
	policyFile := filepath.Join(e.dir, "policy.yaml")
	newPolicy := "- kind: sim\n  measurement: abcd\n- kind: sgx\n  signer: \"0102\"\n  product: \"03\"\n  min_security_version: 2\n" +
		"- kind: confidential-space\n  measurement: " + strings.Repeat("c5", 32) + "\n  issuer: https://attest.example\n  hardware_models:\n    - GCP_INTEL_TDX\n"
	if err := os.WriteFile(policyFile, []byte(newPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = runIO(t, "", "node", "cluster", "policy", "--config", e.config, "--set", policyFile)
	if err != nil || out != newPolicy || !strings.Contains(stderr, "3 rules") {
		t.Fatalf("policy --set: %v\n%s\nwant\n%s", err, out, newPolicy)
	}
	if out, _, err = runIO(t, "", "node", "cluster", "policy", "--config", e.config); err != nil || out != newPolicy {
		t.Fatalf("policy after --set: %v\n%s", err, out)
	}
	if out, _, err = runIO(t, "- kind: sim\n  measurement: ef\n", "node", "cluster", "policy", "--config", e.config, "--set", "-"); err != nil ||
		out != "- kind: sim\n  measurement: ef\n" {
		t.Fatalf("policy --set -: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
		is          error
	}{
		{"policy with an unknown field", "- kinds: sim\n", []string{"policy", "--set", "-"}, "not a YAML list of rules", nil},
		{"policy that is not a list", "kind: sim\n", []string{"policy", "--set", "-"}, "not a YAML list of rules", nil},
		{"empty policy", "", []string{"policy", "--set", "-"}, "holds no rules", nil},
		{"policy the node refuses", "- kind: sgx\n  signer: zz\n", []string{"policy", "--set", "-"}, "rule 0: signer is not hex", node.ErrAdminAPI},
		{"remove itself", "", []string{"remove", "n1"}, "cluster leave", node.ErrRefused},
		{"remove an unknown node", "", []string{"remove", "n9"}, `"n9" is not a member`, cluster.ErrMember},
		{"remove nobody", "", []string{"remove"}, "accepts 1 arg", nil},
		{"transfer as the only voter", "", []string{"transfer-leader"}, "only voter", node.ErrRefused},
		{"leave as the last voter", "", []string{"leave"}, `"n1" is the last voter`, cluster.ErrMember},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"node", "cluster"}, tc.args...), "--config", e.config)
			_, _, err := runIO(t, tc.stdin, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("error %v, want one that says %q (%v)", err, tc.want, tc.is)
			}
		})
	}
	if out, _, _ := runIO(t, "", "node", "cluster", "policy", "--config", e.config); out != "- kind: sim\n  measurement: ef\n" {
		t.Fatalf("a refused policy changed it:\n%s", out)
	}
	if !e.node.Ready() {
		t.Fatalf("a refused leave left the node %s", e.node.Phase())
	}
}

// TestPrintMembers shows how list reads for people: a member unreachable
// for hours says so, with the time it went silent; the applied index is
// this node's own or, on the leader, the one a member last reported.
func TestPrintMembers(t *testing.T) {
	now := time.Date(2025, 3, 2, 10, 0, 0, 0, time.UTC)
	silent, contact := now.Add(-3*time.Hour), now.Add(-150*time.Millisecond)
	sessions, capacity := 2, 64
	v := node.ClusterView{ClusterID: "c-1", ViewOf: "n1", LeaderID: "n1", LivenessKnown: true, Members: []node.MemberView{
		{ID: "n1", Role: node.RoleLeader, Liveness: node.LivenessSelf, Address: "10.0.0.1:7000", Location: "onprem:dc1", InMemberTable: true,
			Enclave: node.EnclaveView{Kind: "sgx"}, Load: node.MemberLoad{RequestsOwned: 2, Sessions: &sessions, Capacity: &capacity},
			Raft: &node.MemberRaft{State: "Leader", AppliedIndex: 912}},
		{ID: "n2", Role: node.RoleVoter, Liveness: node.LivenessUnreachable, UnreachableSince: &silent, Address: "10.0.0.2:7000",
			InMemberTable: true, Enclave: node.EnclaveView{Kind: "sim"}, Load: node.MemberLoad{RequestsOwned: 5},
			Reported: &node.MemberReport{AppliedIndex: 344, At: silent.Add(-time.Second)}},
		{ID: "n3", Role: node.RoleNonvoter, Liveness: node.LivenessReachable, LastContact: &contact},
	}}
	var b bytes.Buffer
	if err := printMembers(&b, v, now); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
	for _, want := range []string{"2 (2/64 sessions)", "UNREACHABLE for 3h0m0s (since 2025-03-02T07:00:00Z)", "reachable (contact 150ms ago)",
		"not in the member table", " 912 ", "344 (reported 3h0m1s ago)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("list lacks %q", want)
		}
	}
	v.LivenessKnown = false
	b.Reset()
	_ = printMembers(&b, v, now)
	if !strings.Contains(b.String(), "run list on the leader") {
		t.Errorf("a follower's list does not say where liveness is known:\n%s", b.String())
	}
}

// TestNodeJoinCommand checks what node join refuses before it contacts
// anyone: no token, a garbled one, an expired one, and a node that is a
// member already. The token is never a flag.
func TestNodeJoinCommand(t *testing.T) {
	e := startInProcessNode(t, "")
	out, _, err := runIO(t, "", "node", "cluster", "join-token", "--config", e.config)
	if err != nil {
		t.Fatal(err)
	}
	ticket, err := cluster.ParseJoinToken(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.node.Close(); err != nil {
		t.Fatal(err)
	}
	expired := ticket
	expired.ExpiresAt = time.Now().Add(-time.Minute)

	fresh := filepath.Join(t.TempDir(), "n2.yaml")
	conf := fmt.Sprintf("node_id: n2\ndata_dir: n2\nenclave:\n  sim_platform_key: %q\nraft:\n  bind: %q\n  bootstrap: false\n",
		filepath.Join(e.dir, "platform.key"), loopbackAddr(t))
	if err := os.WriteFile(fresh, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, stdin, config string
		args                []string
		want                string
		is                  error
	}{
		{"no token file", "", fresh, nil, "token-file", nil},
		{"token as a flag", "", fresh, []string{"--token", "x"}, "unknown flag: --token", nil},
		{"empty token", "\n", fresh, []string{"--token-file", "-"}, "standard input holds no join token", nil},
		{"garbled token", "coterie-join-v1.!!", fresh, []string{"--token-file", "-"}, "malformed join token", cluster.ErrMalformedJoinToken},
		{"expired token", expired.String(), fresh, []string{"--token-file", "-"}, "expired", cluster.ErrJoinTokenExpired},
		{"a member already", out, e.config, []string{"--token-file", "-"}, "joined a cluster already", node.ErrJoined},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"node", "join", "--config", tc.config}, tc.args...)
			_, _, err := runIO(t, tc.stdin, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("error %v, want one that says %q (%v)", err, tc.want, tc.is)
			}
			if strings.Contains(fmt.Sprint(err), strings.TrimSpace(out)) {
				t.Fatal("the error repeats the token")
			}
		})
	}
}

// TestNodeRunDrainsOnSIGTERM runs `node run` as a process and stops it
// with SIGTERM: it drains, says so, and exits 0.
func TestNodeRunDrainsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a real process")
	}
	dir := t.TempDir()
	bin := buildBinary(t)
	confPath := filepath.Join(dir, "node.yaml")
	conf := fmt.Sprintf("node_id: n1\ndata_dir: node\nenclave:\n  sim_platform_key: platform.key\nraft:\n  bind: %q\n"+
		"admin:\n  listen: %q\npresign:\n  target_depth: 0\n  max_depth: 0\nshutdown_grace: 5s\n", loopbackAddr(t), loopbackAddr(t))
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := node.LoadConfig(confPath)
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, bin, dir, "node", "node", "run", "--config", confPath)
	waitFor(t, time.Minute, "the node to serve", func() bool {
		ac, err := node.NewAdminClient(cfg)
		if err != nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return ac.Healthy(ctx)
	}, p)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("node run did not exit within 30s of SIGTERM:\n%s", p.tail())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("node run exited %d:\n%s", code, p.tail())
	}
	log := p.tail()
	for _, want := range []string{"node n1 draining", "node drained", "node n1 drained: 0 unfinished requests handed back", "node n1 stopping"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
}
