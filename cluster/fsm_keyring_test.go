package cluster

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

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
			kind, rest, _ := strings.Cut(r, ":")
			ref, ver, _ := strings.Cut(rest, "@")
			e := &protocol.ClusterResealedRecord{Id: ref, Sealed: scriptSealed(uint32(d.atoi(c, ver)))}
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
