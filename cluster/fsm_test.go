package cluster

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/protocol"
)

// fsmDriver applies script commands to an FSM and remembers the log so
// snapshots can be checked against replay.
type fsmDriver struct {
	t      *testing.T
	fsm    *FSM
	events <-chan Event
	log    []*raft.Log
	at     int64
	// snap is the last snapshot taken and the log length at that time.
	snap    []byte
	snapLen int
}

func newFSMDriver(t *testing.T) *fsmDriver {
	f := NewFSM()
	evs, cancel := f.Subscribe(1024)
	t.Cleanup(cancel)
	return &fsmDriver{t: t, fsm: f, events: evs, at: 1_000_000_000}
}

func TestFSMScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/fsm_*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			d := newFSMDriver(t)
			runScript(t, file, d.run)
		})
	}
}

func (d *fsmDriver) run(c scriptCase) string {
	arg := func(k string) string { return c.args[k] }
	switch c.cmd {
	case "claim":
		return d.apply(c, ClaimCommand(arg("req"), arg("user")))
	case "reserve":
		return d.apply(c, ReserveCommand(arg("req"), PresignatureRef{KeyID: arg("key"), ID: arg("id")}))
	case "confirm":
		return d.apply(c, ConfirmCommand(arg("req")))
	case "complete":
		return d.apply(c, CompleteCommand(arg("req"), parseOutcome(arg("outcome")), arg("reason")))
	case "release":
		return d.apply(c, ReleaseCommand(arg("target"), arg("user")))
	case "add-presignatures":
		// Origin numbers follow on from the node's last Add of the key, as
		// Cluster.AddPresignatures numbers them, unless seqs= gives them.
		ids, seqs := splitList(arg("ids")), splitList(arg("seqs"))
		if seqs != nil && len(seqs) != len(ids) {
			d.t.Fatalf("%s: %d seqs for %d ids", c.pos, len(seqs), len(ids))
		}
		next := d.fsm.HighWater(arg("key"), arg("node")) + 1
		var ps []SealedPresignature
		for i, id := range ids {
			seq := next + uint64(i)
			if seqs != nil {
				n, err := strconv.ParseUint(seqs[i], 10, 64)
				if err != nil {
					d.t.Fatalf("%s: seqs: %v", c.pos, err)
				}
				seq = n
			}
			ps = append(ps, SealedPresignature{ID: id, OriginSeq: seq, Sealed: []byte("sealed:" + id), KeyEpoch: []byte(arg("epoch"))})
		}
		return d.apply(c, PresignaturesAddedCommand(arg("key"), arg("reserve-for"), ps))
	case "add-user":
		return d.apply(c, APIUserAddedCommand(d.record(c)))
	case "add-key":
		return d.apply(c, KeyRecordAddedCommand(d.record(c)))
	case "keyring-export":
		var versions []uint32
		for _, v := range splitList(arg("versions")) {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				d.t.Fatalf("%s: versions: %v", c.pos, err)
			}
			versions = append(versions, uint32(n))
		}
		return d.apply(c, KeyringExportedCommand(splitList(arg("recipients")), versions))
	case "refresh-key":
		return d.apply(c, KeyRefreshedCommand(arg("key"), []byte(arg("from")), []byte(arg("epoch")), []byte(arg("sealed"))))
	case "init":
		return d.apply(c, InitCommand(arg("cluster"), scriptPolicy(arg("policy")), d.member(c)))
	case "add-member":
		return d.apply(c, MemberAddedCommand(d.member(c)))
	case "remove-member":
		return d.apply(c, MemberRemovedCommand(arg("id")))
	case "set-policy":
		return d.apply(c, PolicySetCommand(scriptPolicy(arg("policy"))))
	case "issue-token":
		ttl, err := time.ParseDuration(arg("ttl"))
		if err != nil {
			d.t.Fatalf("%s: ttl: %v", c.pos, err)
		}
		h := sha256.Sum256([]byte(arg("secret")))
		return d.apply(c, JoinTokenIssuedCommand(arg("id"), h[:], time.Unix(0, d.at+1_000_000_000).Add(ttl)))
	case "members":
		return formatMembers(d.fsm)
	case "callback-set":
		return d.apply(c, CallbackSetCommand(arg("url"), []byte(arg("key"))))
	case "callback":
		url, key, ok := d.fsm.Callback()
		return fmt.Sprintf("recorded=%t url=%q key=%q", ok, url, key)
	case "user-callback-set":
		return d.apply(c, UserCallbackSetCommand(arg("user"), arg("url"), []byte(arg("key"))))
	case "user-callback-clear":
		return d.apply(c, UserCallbackClearedCommand(arg("user")))
	case "user-callbacks":
		var out []string
		for _, u := range d.fsm.UserCallbacks() {
			out = append(out, fmt.Sprintf("%s url=%q key=%q", u.UserID, u.URL, u.HandlerKey))
		}
		if len(out) == 0 {
			return "(none)"
		}
		return strings.Join(out, "\n")
	case "raw":
		b, err := hex.DecodeString(arg("hex"))
		if err != nil {
			d.t.Fatalf("%s: %v", c.pos, err)
		}
		return d.applyBytes(b)
	case "request":
		return formatRequest(d.fsm, arg("id"))
	case "pool":
		return formatPool(d.fsm, arg("key"))
	case "owned":
		return fmt.Sprintf("%v", d.fsm.OwnedBy(arg("node")))
	case "unclaimed":
		var ids []string
		for _, r := range d.fsm.Unclaimed() {
			ids = append(ids, r.ID+"@"+r.APIUserID)
		}
		return fmt.Sprintf("%v", ids)
	case "records":
		var out []string
		for _, r := range append(d.fsm.APIUsers(), d.fsm.KeyRecords()...) {
			line := fmt.Sprintf("%s owner=%q public=%q sealed=%q at=%d", r.ID, r.OwnerID, r.Public, r.Sealed, r.AddedAt.UnixNano())
			if len(r.Epoch) > 0 {
				line += fmt.Sprintf(" epoch=%q refreshed-at=%d", r.Epoch, r.RefreshedAt.UnixNano())
			}
			out = append(out, line)
		}
		if len(out) == 0 {
			return "(none)"
		}
		return strings.Join(out, "\n")
	case "snapshot":
		s, err := d.fsm.Snapshot()
		if err != nil {
			return "error: " + err.Error()
		}
		d.snap = s.(*fsmSnapshot).data
		d.snapLen = len(d.log)
		return fmt.Sprintf("ok index=%d", d.fsm.AppliedIndex())
	case "check-snapshot":
		return d.checkSnapshot()
	default:
		if out, ok := d.runKeyring(c); ok {
			return out
		}
		if out, ok := d.runAudit(c); ok {
			return out
		}
		d.t.Fatalf("%s: unknown command %q", c.pos, c.cmd)
		return ""
	}
}

// member builds a member from id=, key= (a seed: the key is derived
// from it), addr=, location=, token= and kind=.
func (d *fsmDriver) member(c scriptCase) Member {
	kind, err := enclave.ParseKind(cmpOr(c.args["kind"], "sim"))
	if err != nil {
		d.t.Fatalf("%s: %v", c.pos, err)
	}
	return Member{
		ID: c.args["id"], Address: c.args["addr"], IdentityKey: scriptKey(c.args["key"]),
		Enclave: enclave.Identity{Kind: kind, Measurement: []byte("m1")}, Location: c.args["location"], JoinedWith: c.args["token"],
	}
}

// scriptKey derives a 32-byte public key from a seed name.
func scriptKey(seed string) ed25519.PublicKey {
	if seed == "" {
		return nil
	}
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte(seed)[:1], 32)).Public().(ed25519.PublicKey)
}

// scriptPolicy parses "kind:measurement[;issuer=URL][;hw=MODEL+MODEL],..."
// into a policy.
func scriptPolicy(s string) enclave.Policy {
	var p enclave.Policy
	for _, r := range splitList(s) {
		r, opts, _ := strings.Cut(r, ";")
		kind, m, _ := strings.Cut(r, ":")
		k, _ := enclave.ParseKind(kind)
		rule := enclave.Rule{Kind: k, Measurement: []byte(m), AllowDebug: true}
		for _, opt := range strings.Split(opts, ";") {
			switch name, v, _ := strings.Cut(opt, "="); name {
			case "issuer":
				rule.Issuer = v
			case "hw":
				rule.HardwareModels = strings.Split(v, "+")
			}
		}
		p.Allow = append(p.Allow, rule)
	}
	return p
}

// formatRule is the inverse of scriptPolicy for one rule.
func formatRule(r enclave.Rule) string {
	out := r.Kind.String() + ":" + string(r.Measurement)
	if r.Issuer != "" {
		out += ";issuer=" + r.Issuer
	}
	if len(r.HardwareModels) > 0 {
		out += ";hw=" + strings.Join(r.HardwareModels, "+")
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func formatMembers(f *FSM) string {
	out := []string{fmt.Sprintf("cluster=%q", f.ClusterID())}
	if p, ok := f.Policy(); ok {
		var rules []string
		for _, r := range p.Allow {
			rules = append(rules, formatRule(r))
		}
		out = append(out, "policy="+strings.Join(rules, ","))
	}
	for _, m := range f.Members() {
		out = append(out, fmt.Sprintf("  %s addr=%s key=%x location=%q enclave=%s joined-with=%q joined-at=%d",
			m.ID, m.Address, m.IdentityKey[:4], m.Location, m.Enclave.Kind, m.JoinedWith, m.JoinedAt.UnixNano()))
	}
	f.mu.RLock()
	for _, id := range slices.Sorted(maps.Keys(f.st.tokens)) {
		t := f.st.tokens[id]
		used := "unused"
		if len(t.GetUsedBy()) > 0 {
			used = fmt.Sprintf("used-by=%x", t.GetUsedBy()[:4])
		}
		out = append(out, fmt.Sprintf("  token %s expires=%d by=%s %s", id, t.GetExpiresAtUnixNano(), t.GetIssuedBy(), used))
	}
	f.mu.RUnlock()
	return strings.Join(out, "\n")
}

func (d *fsmDriver) record(c scriptCase) Record {
	sealed := c.args["sealed"]
	if _, ok := c.args["sealed"]; !ok {
		sealed = "sealed:" + c.args["id"]
	}
	return Record{ID: c.args["id"], OwnerID: c.args["owner"], Public: []byte(c.args["public"]), Sealed: []byte(sealed),
		Epoch: []byte(c.args["epoch"])}
}

func parseOutcome(s string) Outcome {
	for o := OutcomeUnspecified; o <= OutcomeIgnored; o++ {
		if o.String() == s {
			return o
		}
	}
	return OutcomeUnspecified
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// apply stamps and applies a command. The envelope comes from the args:
// node (the proposer), at (a timestamp; by default one more second than the
// last command) and version.
func (d *fsmDriver) apply(c scriptCase, cmd *protocol.ClusterCommand) string {
	d.at += 1_000_000_000
	if v, ok := c.args["at"]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			d.t.Fatalf("%s: at: %v", c.pos, err)
		}
		d.at = n
	}
	cmd.Version = CommandVersion
	if v, ok := c.args["version"]; ok {
		n, _ := strconv.Atoi(v)
		cmd.Version = uint32(n)
	}
	cmd.Node = c.args["node"]
	cmd.ProposedAtUnixNano = d.at
	b, err := EncodeCommand(cmd)
	if err != nil {
		return "encode error: " + err.Error()
	}
	return d.applyBytes(b)
}

func (d *fsmDriver) applyBytes(b []byte) string {
	l := &raft.Log{Index: uint64(len(d.log) + 1), Term: 1, Type: raft.LogCommand, Data: b}
	d.log = append(d.log, l)
	res := d.fsm.Apply(l)
	var out strings.Builder
	if err, ok := res.(error); ok {
		fmt.Fprintf(&out, "error: %v", err)
	} else {
		out.WriteString("ok")
	}
	for {
		select {
		case ev := <-d.events:
			out.WriteString("\n" + formatEvent(ev))
			continue
		default:
		}
		break
	}
	return out.String()
}

func formatEvent(ev Event) string {
	s := fmt.Sprintf("event %s index=%d", ev.Kind, ev.Index)
	for _, kv := range []struct{ k, v string }{
		{"req", ev.RequestID}, {"user", ev.APIUserID}, {"node", ev.Node}, {"key", ev.KeyID},
		{"presig", ev.Presignature.ID}, {"record", ev.RecordID},
	} {
		if kv.v != "" {
			s += " " + kv.k + "=" + kv.v
		}
	}
	if ev.Outcome != OutcomeUnspecified {
		s += " outcome=" + ev.Outcome.String()
	}
	if ev.Count != 0 {
		s += fmt.Sprintf(" count=%d", ev.Count)
	}
	if ev.KeyVersion != 0 {
		s += fmt.Sprintf(" version=%d", ev.KeyVersion)
	}
	return s
}

func formatRequest(f *FSM, id string) string {
	r, ok := f.Request(id)
	if !ok {
		return "unknown"
	}
	s := fmt.Sprintf("status=%s owner=%q last-owner=%q user=%q attempt=%d claimed-at=%d burned=%d",
		r.Status, r.Owner, r.LastOwner, r.APIUserID, r.Attempt, r.ClaimedAt.UnixNano(), r.Burned)
	if len(r.Reserved) > 0 {
		var refs []string
		for _, p := range r.Reserved {
			refs = append(refs, p.KeyID+"/"+p.ID)
		}
		s += fmt.Sprintf(" reserved=%v", refs)
	}
	if r.Status == StatusCompleted {
		s += fmt.Sprintf(" outcome=%s reason=%q completed-at=%d", r.Outcome, r.Reason, r.CompletedAt.UnixNano())
	}
	return s
}

func formatPool(f *FSM, key string) string {
	s := fmt.Sprintf("depth=%d available=%v", f.PoolDepth(key), f.Available(key))
	f.mu.RLock()
	kp := f.st.pools[key]
	var ids []string
	if kp != nil {
		for id := range kp.live {
			ids = append(ids, id)
		}
		for id := range kp.spent {
			ids = append(ids, id)
		}
	}
	f.mu.RUnlock()
	var lines []string
	for _, id := range ids {
		p, _ := f.Presignature(key, id)
		line := fmt.Sprintf("  %s seq=%d from=%s#%d %s", p.ID, p.Seq, p.Origin, p.OriginSeq, p.Status)
		if p.RequestID != "" {
			line += " req=" + p.RequestID
		}
		if len(p.Sealed) > 0 {
			line += " sealed"
		}
		lines = append(lines, line)
	}
	sortLines(lines)
	return strings.Join(append([]string{s}, lines...), "\n")
}

// sortLines sorts by the seq field, which is unique per key.
func sortLines(lines []string) {
	seq := func(l string) int {
		_, after, _ := strings.Cut(l, "seq=")
		n, _ := strconv.Atoi(strings.Fields(after)[0])
		return n
	}
	for i := 1; i < len(lines); i++ {
		for j := i; j > 0 && seq(lines[j]) < seq(lines[j-1]); j-- {
			lines[j], lines[j-1] = lines[j-1], lines[j]
		}
	}
}

// checkSnapshot checks that (1) restoring the last snapshot and replaying
// the log after it, and (2) replaying the whole log from empty, both give
// the current state, byte for byte.
func (d *fsmDriver) checkSnapshot() string {
	want, err := d.fsm.EncodeState()
	if err != nil {
		return "error: " + err.Error()
	}
	replay := func(f *FSM, from int) []byte {
		for _, l := range d.log[from:] {
			f.Apply(l)
		}
		got, err := f.EncodeState()
		if err != nil {
			d.t.Fatal(err)
		}
		return got
	}
	restored := NewFSM()
	if err := restored.Restore(io.NopCloser(bytes.NewReader(d.snap))); err != nil {
		return "restore error: " + err.Error()
	}
	// A snapshot is also encoded the same way twice.
	again, _ := restored.EncodeState()
	switch {
	case !bytes.Equal(again, d.snap):
		return "restored snapshot re-encodes differently"
	case !bytes.Equal(replay(restored, d.snapLen), want):
		return "restore + replay differs"
	case !bytes.Equal(replay(NewFSM(), 0), want):
		return "full replay differs"
	}
	return fmt.Sprintf("equal (%d entries replayed after the snapshot, state %d bytes)", len(d.log)-d.snapLen, len(want))
}
