package cluster

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/protocol"
)

// runKeyring runs the keyring commands of the FSM scripts:
//
//	rotate-keyring node= v= copies=member:keyseed,... [check-bytes=]
//	adopt-keyring node= v=
//	reseal node= records=presignature:key/id@version,api-user:id@version,key:id@version
//	keyring
//
// A copy's wrapped bytes are a placeholder (the FSM never opens them); a
// resealed part is a keyring ciphertext header naming its version.
func (d *fsmDriver) runKeyring(c scriptCase) (string, bool) {
	arg := func(k string) string { return c.args[k] }
	switch c.cmd {
	case "rotate-keyring":
		check := make([]byte, keyCheckSize)
		if n, ok := c.args["check-bytes"]; ok {
			check = make([]byte, d.atoi(c, n))
		}
		rot := &protocol.ClusterKeyringRotated{Version: uint32(d.atoi(c, arg("v"))), Check: check}
		for _, cp := range splitList(arg("copies")) {
			id, seed, _ := strings.Cut(cp, ":")
			rot.Copies = append(rot.Copies, &protocol.ClusterWrappedKey{MemberId: id, IdentityKey: scriptKey(seed), Wrapped: []byte("wrapped-for-" + id)})
		}
		return d.apply(c, &protocol.ClusterCommand{Body: &protocol.ClusterCommand_KeyringRotated{KeyringRotated: rot}}), true
	case "adopt-keyring":
		a := &protocol.ClusterKeyringAdopted{Version: uint32(d.atoi(c, arg("v")))}
		return d.apply(c, &protocol.ClusterCommand{Body: &protocol.ClusterCommand_KeyringAdopted{KeyringAdopted: a}}), true
	case "reseal":
		cmd := &protocol.ClusterRecordsResealed{}
		for _, r := range splitList(arg("records")) {
			// kind:ref@version, and #sealed names the sealed part the
			// entry says it re-encrypts (replaces_sha256).
			r, was, replaces := strings.Cut(r, "#")
			kind, rest, _ := strings.Cut(r, ":")
			ref, ver, _ := strings.Cut(rest, "@")
			e := &protocol.ClusterResealedRecord{Id: ref, Sealed: scriptSealed(uint32(d.atoi(c, ver)))}
			if replaces {
				h := sha256.Sum256([]byte(was))
				e.ReplacesSha256 = h[:]
			}
			switch kind {
			case "presignature":
				e.Kind = sealedPresignature
				e.KeyId, e.Id, _ = strings.Cut(ref, "/")
			case "api-user":
				e.Kind = sealedAPIUser
			case "key":
				e.Kind = sealedKeyRecord
			}
			cmd.Records = append(cmd.Records, e)
		}
		return d.apply(c, &protocol.ClusterCommand{Body: &protocol.ClusterCommand_RecordsResealed{RecordsResealed: cmd}}), true
	case "keyring":
		return formatKeyring(d.fsm), true
	}
	return "", false
}

func (d *fsmDriver) atoi(c scriptCase, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		d.t.Fatalf("%s: %v", c.pos, err)
	}
	return n
}

// scriptSealed is a keyring ciphertext header naming version, with a
// zero record hash, nonce and tag: enough for the FSM, which reads only
// the version.
func scriptSealed(version uint32) []byte {
	b := append([]byte("CK"), 1)
	b = binary.BigEndian.AppendUint32(b, version)
	return append(b, make([]byte, keyring.Overhead-len(b))...)
}

func formatKeyring(f *FSM) string {
	st := f.KeyringState()
	out := []string{fmt.Sprintf("version=%d reached=%v stale=%d", st.Version, st.Reached(), f.StaleSealed())}
	for _, id := range slices.Sorted(maps.Keys(st.Adopted)) {
		out = append(out, fmt.Sprintf("  %s adopted=%d pending=%v", id, st.Adopted[id], st.Pending[id]))
	}
	for _, id := range slices.Sorted(maps.Keys(st.Pending)) {
		if _, ok := st.Adopted[id]; !ok {
			out = append(out, fmt.Sprintf("  %s (not a member) pending=%v", id, st.Pending[id]))
		}
	}
	return strings.Join(out, "\n")
}

// TestDecodeKeyringSnapshot restores snapshots whose keyring part breaks a
// rule the commands keep: each is refused as malformed, and the valid one
// restores. The base state has members n1..n3, version 2 with copies left
// for n2 and n3 (n1 adopted it), and version 3 with a copy for each.
func TestDecodeKeyringSnapshot(t *testing.T) {
	d := newFSMDriver(t)
	for _, line := range []string{
		"init node=n1 cluster=c1 policy=sim:m1 id=n1 key=a addr=127.0.0.1:7001",
		"issue-token node=n1 id=t2 secret=s2 ttl=1h",
		"add-member node=n1 id=n2 key=b addr=127.0.0.1:7002 token=t2",
		"issue-token node=n1 id=t3 secret=s3 ttl=1h",
		"add-member node=n1 id=n3 key=c addr=127.0.0.1:7003 token=t3",
		"rotate-keyring node=n1 v=2 copies=n1:a,n2:b,n3:c",
		"adopt-keyring node=n1 v=2",
		"rotate-keyring node=n1 v=3 copies=n1:a,n2:b,n3:c",
	} {
		cmd, args := parseCommandLine(t, "setup", line)
		if out := d.run(scriptCase{pos: "setup", raw: line, cmd: cmd, args: args}); !strings.HasPrefix(out, "ok") {
			t.Fatalf("%s: %s", line, out)
		}
	}
	base, err := d.fsm.EncodeState()
	if err != nil {
		t.Fatal(err)
	}
	copyFor := func(id, seed string) *protocol.ClusterWrappedKey {
		return &protocol.ClusterWrappedKey{MemberId: id, IdentityKey: scriptKey(seed), Wrapped: []byte("wrapped-for-" + id)}
	}
	tests := []struct {
		name   string
		change func(st *protocol.ClusterState)
		ok     bool
	}{
		{name: "as taken", change: func(*protocol.ClusterState) {}, ok: true},
		{name: "latest rotation without copies", change: func(st *protocol.ClusterState) { st.KeyringVersions[1].Copies = nil }, ok: true},
		{name: "rotations out of order", change: func(st *protocol.ClusterState) {
			st.KeyringVersions[0], st.KeyringVersions[1] = st.KeyringVersions[1], st.KeyringVersions[0]
		}},
		{name: "the first version rotated", change: func(st *protocol.ClusterState) { st.KeyringVersions[0].Version = 1 }},
		{name: "malformed check", change: func(st *protocol.ClusterState) { st.KeyringVersions[0].Check = []byte{1} }},
		{name: "copies out of order", change: func(st *protocol.ClusterState) {
			c := st.KeyringVersions[1].Copies
			c[0], c[1] = c[1], c[0]
		}},
		{name: "copy for a non-member", change: func(st *protocol.ClusterState) {
			st.KeyringVersions[1].Copies = append(st.KeyringVersions[1].Copies, copyFor("n9", "z"))
		}},
		{name: "copy wrapped to another key", change: func(st *protocol.ClusterState) {
			st.KeyringVersions[1].Copies[0].IdentityKey = scriptKey("z")
		}},
		{name: "earlier rotation without copies", change: func(st *protocol.ClusterState) { st.KeyringVersions[0].Copies = nil }},
		{name: "copy kept for a member that adopted it", change: func(st *protocol.ClusterState) {
			st.KeyringVersions[0].Copies = append([]*protocol.ClusterWrappedKey{copyFor("n1", "a")}, st.KeyringVersions[0].Copies...)
		}},
		{name: "adoption by a non-member", change: func(st *protocol.ClusterState) {
			st.KeyringAdopted = append(st.KeyringAdopted, &protocol.ClusterKeyringAck{MemberId: "n9", Version: 2})
		}},
		{name: "adoption of a version never rotated in", change: func(st *protocol.ClusterState) {
			st.KeyringAdopted[0].Version = 4
		}},
		{name: "adoption twice", change: func(st *protocol.ClusterState) {
			st.KeyringAdopted = append(st.KeyringAdopted, st.KeyringAdopted[0])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st protocol.ClusterState
			if err := proto.Unmarshal(base, &st); err != nil {
				t.Fatal(err)
			}
			tt.change(&st)
			b, err := proto.Marshal(&st)
			if err != nil {
				t.Fatal(err)
			}
			err = NewFSM().Restore(io.NopCloser(bytes.NewReader(b)))
			switch {
			case tt.ok && err != nil:
				t.Fatalf("restore: %v", err)
			case !tt.ok && !errors.Is(err, ErrBadCommand):
				t.Fatalf("restore: %v, want ErrBadCommand", err)
			}
		})
	}
}
