package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/node"
)

// rotateKeyring runs `node cluster rotate-keyring` through node i and
// returns its report.
func (c *testCluster) rotateKeyring(i int) node.RotationReport {
	c.t.Helper()
	var r node.RotationReport
	out := c.cli(i, "node", "cluster", "rotate-keyring", "--config", c.nodes[i].conf)
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		c.t.Fatalf("rotate-keyring printed %q: %v", out, err)
	}
	return r
}

// keyringDone runs `node cluster keyring` through node i until every
// member reports version and no record is left under an older one.
func (c *testCluster) keyringDone(i int, version uint32) node.KeyringReport {
	c.t.Helper()
	var last node.KeyringReport
	defer func() {
		if c.t.Failed() {
			c.t.Logf("the last keyring report: %+v", last)
		}
	}()
	waitFor(c.t, 60*time.Second, fmt.Sprintf("every member on keyring version %d and no record left", version), func() bool {
		out := c.cli(i, "node", "cluster", "keyring", "--config", c.nodes[i].conf)
		// A fresh report each time: Unmarshal into the last one would
		// keep a member's pending versions that the output now omits.
		last = node.KeyringReport{}
		if err := json.Unmarshal([]byte(out), &last); err != nil {
			c.t.Fatalf("keyring printed %q: %v", out, err)
		}
		if last.Version != version || last.RecordsLeft != 0 || len(last.Members) != len(c.nodes) {
			return false
		}
		for _, m := range last.Members {
			if m.Version != version || len(m.Pending) != 0 {
				return false
			}
		}
		return true
	}, c.procs()...)
	return last
}

// sealedKeyring opens a stopped node's sealed keyring offline.
func sealedKeyring(t *testing.T, cfg node.Config) *keyring.Keyring {
	t.Helper()
	u := unsealOffline(t, cfg)
	clear(u.Identity)
	return u.Keyring
}

// TestClusterRotateKeyring rotates the keyring of three real nodes with
// the commands an operator runs: every member takes the new version in,
// the old records are re-encrypted until none is left, and the cluster
// signs on. A node restarted after the rotation opens its sealed keyring,
// which holds the version, and serves; a node killed before a second
// rotation takes that version in when it comes back, and only then is the
// last record moved. Every request is signed once with its own
// presignature.
func TestClusterRotateKeyring(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs real processes")
	}
	c := newTestCluster(t, 1)
	c.pair(0)
	c.waitDone(c.submit(3, "before the rotation"), 2*time.Minute)

	rot := c.rotateKeyring(1)
	if rot.Version != 2 || !slices.Equal(rot.WrappedTo, []string{"n1", "n2", "n3"}) {
		t.Fatalf("rotation %+v, want version 2 wrapped to n1, n2, n3", rot)
	}
	c.keyringDone(0, 2)
	c.waitDone(c.submit(3, "after the rotation"), 2*time.Minute)

	// A planned restart: the node unseals its keyring, version 2 in it.
	restarted := c.nodes[2]
	restarted.proc.stop()
	if kr := sealedKeyring(t, restarted.cfg); !kr.Holds(2) || kr.Version() != 2 {
		t.Fatalf("%s's sealed keyring holds versions %v, want up to 2", restarted.id, kr.Versions())
	}
	c.run(2)
	c.waitMembers(3)
	c.waitDone(c.submit(3, "after a restart"), 2*time.Minute)

	// A node dies before the next rotation: the rest rotate without it,
	// and nothing is re-encrypted until it has come back and taken the
	// version in.
	down := c.nodes[1]
	down.proc.kill()
	rot = c.rotateKeyring(0)
	if rot.Version != 3 || !slices.Contains(rot.WrappedTo, down.id) {
		t.Fatalf("rotation %+v, want version 3 wrapped to every member, %s included", rot, down.id)
	}
	out := c.cli(0, "node", "cluster", "keyring", "--config", c.nodes[0].conf)
	var rep node.KeyringReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rep.Members, func(m node.MemberKeyring) bool { return m.ID == down.id })
	if i < 0 {
		t.Fatalf("the node that is down is missing from the keyring report: %+v", rep)
	}
	if m := rep.Members[i]; m.Version != 2 || !slices.Equal(m.Pending, []uint32{3}) {
		t.Fatalf("the node that is down shows as %+v, want version 2 with 3 pending", m)
	}
	if rep.RecordsLeft == 0 {
		t.Fatal("records were re-encrypted under version 3 while a member lacks it")
	}
	c.run(1)
	c.waitMembers(3)
	c.keyringDone(2, 3)
	down.proc.stop()
	if kr := sealedKeyring(t, down.cfg); kr.Version() != 3 {
		t.Fatalf("%s's sealed keyring holds versions %v after it caught up, want up to 3", down.id, kr.Versions())
	}
	c.run(1)
	c.waitMembers(3)
	c.waitDone(c.submit(3, "after the second rotation"), 2*time.Minute)
	c.checkInvariants()
}
