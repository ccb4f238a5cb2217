package cluster

import (
	"cmp"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/protocol"
)

// StateVersion is the only ClusterState (snapshot) version this build
// restores.
const StateVersion = 1

// maxSnapshotBytes bounds what Restore reads.
const maxSnapshotBytes = 1 << 30

// encodeState returns the canonical protobuf encoding of st: every list
// sorted by id and deterministic marshalling, so equal states encode to
// equal bytes.
func encodeState(st *state) ([]byte, error) {
	out := &protocol.ClusterState{
		Version:       StateVersion,
		CompletionSeq: st.completionSeq,
		AppliedIndex:  st.appliedIndex,
	}
	for _, id := range slices.Sorted(maps.Keys(st.requests)) {
		out.Requests = append(out.Requests, st.requests[id])
	}
	for _, key := range slices.Sorted(maps.Keys(st.pools)) {
		kp := st.pools[key]
		pool := &protocol.ClusterKeyPool{KeyId: key, NextSeq: kp.nextSeq}
		pool.Live = slices.SortedFunc(maps.Values(kp.live), bySeq)
		pool.Spent = slices.SortedFunc(maps.Values(kp.spent), bySeq)
		pool.HighWater = kp.highWater()
		out.Pools = append(out.Pools, pool)
	}
	out.ApiUsers = sortedRecords(st.users)
	out.KeyRecords = sortedRecords(st.keys)
	out.ClusterId = st.clusterID
	if st.clusterID != "" {
		out.Policy = st.policy
	}
	for _, id := range slices.Sorted(maps.Keys(st.members)) {
		out.Members = append(out.Members, st.members[id])
	}
	for _, id := range slices.Sorted(maps.Keys(st.tokens)) {
		out.JoinTokens = append(out.JoinTokens, st.tokens[id])
	}
	out.Callback = st.callback
	encodeKeyring(st, out)
	out.UserCallbacks = encodeUserCallbacks(st)
	encodeAudit(st, out)
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(out)
	if err != nil {
		return nil, errorf(ErrInternal, "encode state: %v", err)
	}
	return b, nil
}

func bySeq(a, b *protocol.ClusterPresignatureState) int { return cmp.Compare(a.GetSeq(), b.GetSeq()) }

func sortedRecords(m map[string]*protocol.ClusterRecord) []*protocol.ClusterRecord {
	out := make([]*protocol.ClusterRecord, 0, len(m))
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[id])
	}
	return out
}

// decodeState decodes a snapshot and checks the invariants the FSM relies
// on, so that a corrupt snapshot is refused instead of breaking I1 or I2.
func decodeState(b []byte) (*state, error) {
	in := &protocol.ClusterState{}
	if err := proto.Unmarshal(b, in); err != nil {
		return nil, errorf(ErrBadCommand, "snapshot is not a protobuf ClusterState")
	}
	if in.GetVersion() != StateVersion {
		return nil, errorf(ErrBadVersion, "snapshot version %d", in.GetVersion())
	}
	st := newState()
	st.completionSeq = in.GetCompletionSeq()
	st.appliedIndex = in.GetAppliedIndex()
	if err := decodeMembers(st, in); err != nil {
		return nil, err
	}
	if err := decodeKeyring(st, in); err != nil {
		return nil, err
	}
	if in.Callback != nil {
		if err := validateCallback(in.GetCallback()); err != nil {
			return nil, err
		}
		st.callback = in.GetCallback()
	}
	for _, kp := range in.GetPools() {
		pool, err := decodePool(kp)
		if err != nil {
			return nil, err
		}
		if _, dup := st.pools[pool.keyID]; dup {
			return nil, errorf(ErrBadCommand, "snapshot: key %q twice", pool.keyID)
		}
		st.pools[pool.keyID] = pool
	}
	var completed []*protocol.ClusterRequestState
	for _, r := range in.GetRequests() {
		if err := checkRequest(st, r); err != nil {
			return nil, err
		}
		if _, dup := st.requests[r.GetId()]; dup {
			return nil, errorf(ErrBadCommand, "snapshot: request %q twice", r.GetId())
		}
		st.requests[r.GetId()] = r
		if r.GetStatus() == reqCompleted {
			completed = append(completed, r)
		}
	}
	slices.SortFunc(completed, func(a, b *protocol.ClusterRequestState) int {
		return cmp.Compare(a.GetCompletionSeq(), b.GetCompletionSeq())
	})
	for _, r := range completed {
		st.completed = append(st.completed, r.GetId())
	}
	for _, set := range []struct {
		m   map[string]*protocol.ClusterRecord
		in  []*protocol.ClusterRecord
		own bool
	}{{st.users, in.GetApiUsers(), false}, {st.keys, in.GetKeyRecords(), true}} {
		for _, r := range set.in {
			if err := validateRecord("snapshot record", r, set.own); err != nil {
				return nil, err
			}
			if _, dup := set.m[r.GetId()]; dup {
				return nil, errorf(ErrBadCommand, "snapshot: record %q twice", r.GetId())
			}
			set.m[r.GetId()] = r
		}
	}
	// After the API users: each handler must name one of them.
	if err := decodeUserCallbacks(st, in); err != nil {
		return nil, err
	}
	if err := decodeAudit(st, in); err != nil {
		return nil, err
	}
	return st, nil
}

// decodeMembers restores the member table, checking it as the commands
// that built it would.
func decodeMembers(st *state, in *protocol.ClusterState) error {
	if in.GetClusterId() == "" {
		if in.GetPolicy() != nil || len(in.GetMembers()) != 0 || len(in.GetJoinTokens()) != 0 {
			return errorf(ErrBadCommand, "snapshot: a member table without a cluster id")
		}
		return nil
	}
	if err := validatePolicy(in.GetPolicy()); err != nil {
		return err
	}
	st.clusterID, st.policy = in.GetClusterId(), in.GetPolicy()
	if len(in.GetMembers()) == 0 || len(in.GetMembers()) > maxMembers {
		return errorf(ErrBadCommand, "snapshot: %d members", len(in.GetMembers()))
	}
	for _, m := range in.GetMembers() {
		if err := validateMember(m, false); err != nil {
			return err
		}
		if _, dup := st.members[m.GetId()]; dup {
			return errorf(ErrBadCommand, "snapshot: member %q twice", m.GetId())
		}
		st.members[m.GetId()] = m
	}
	if len(in.GetJoinTokens()) > maxJoinTokens {
		return errorf(ErrBadCommand, "snapshot: %d join tokens", len(in.GetJoinTokens()))
	}
	for _, t := range in.GetJoinTokens() {
		if err := checkID("snapshot join token", t.GetId()); err != nil {
			return err
		}
		if _, dup := st.tokens[t.GetId()]; dup || len(t.GetSecretHash()) != 32 {
			return errorf(ErrBadCommand, "snapshot: join token %q is malformed or twice", t.GetId())
		}
		st.tokens[t.GetId()] = t
	}
	return nil
}

func decodePool(in *protocol.ClusterKeyPool) (*keyPool, error) {
	if err := checkID("snapshot key", in.GetKeyId()); err != nil {
		return nil, err
	}
	kp := newKeyPool(in.GetKeyId())
	kp.nextSeq = in.GetNextSeq()
	for _, hw := range in.GetHighWater() {
		if err := checkID("snapshot high-water node", hw.GetNode()); err != nil {
			return nil, err
		}
		if _, dup := kp.high[hw.GetNode()]; dup || hw.GetSeq() == 0 {
			return nil, errorf(ErrBadCommand, "snapshot: key %q, bad high-water mark of node %q", kp.keyID, hw.GetNode())
		}
		kp.high[hw.GetNode()] = hw.GetSeq()
	}
	seqs := map[uint64]bool{}
	check := func(p *protocol.ClusterPresignatureState) error {
		if err := checkID("snapshot presignature", p.GetId()); err != nil {
			return err
		}
		if p.GetSeq() >= kp.nextSeq || seqs[p.GetSeq()] {
			return errorf(ErrBadCommand, "snapshot: key %q, presignature %q has a bad seq", kp.keyID, p.GetId())
		}
		seqs[p.GetSeq()] = true
		if p.GetOriginSeq() == 0 || p.GetOriginSeq() > kp.high[p.GetOrigin()] {
			return errorf(ErrBadCommand, "snapshot: key %q, presignature %q is above its node's high-water mark", kp.keyID, p.GetId())
		}
		if _, ok := kp.live[p.GetId()]; ok {
			return errorf(ErrBadCommand, "snapshot: key %q, presignature %q twice", kp.keyID, p.GetId())
		}
		if _, ok := kp.spent[p.GetId()]; ok {
			return errorf(ErrBadCommand, "snapshot: key %q, presignature %q twice", kp.keyID, p.GetId())
		}
		return nil
	}
	for _, p := range in.GetLive() {
		if err := check(p); err != nil {
			return nil, err
		}
		st := p.GetStatus()
		if (st != psAvailable && st != psReserved) || len(p.GetSealed()) == 0 || (st == psReserved) != (p.GetRequestId() != "") {
			return nil, errorf(ErrBadCommand, "snapshot: key %q, live presignature %q is inconsistent", kp.keyID, p.GetId())
		}
		kp.live[p.GetId()] = p
	}
	for _, p := range in.GetSpent() {
		if err := check(p); err != nil {
			return nil, err
		}
		if (p.GetStatus() != psUsed && p.GetStatus() != psBurned) || len(p.GetSealed()) != 0 {
			return nil, errorf(ErrBadCommand, "snapshot: key %q, spent presignature %q is inconsistent", kp.keyID, p.GetId())
		}
		kp.addSpent(p)
	}
	return kp, nil
}

// checkRequest checks one request of a snapshot against the pools already
// decoded.
func checkRequest(st *state, r *protocol.ClusterRequestState) error {
	if err := checkID("snapshot request", r.GetId()); err != nil {
		return err
	}
	bad := func(why string) error {
		return errorf(ErrBadCommand, "snapshot: request %q: %s", r.GetId(), why)
	}
	switch r.GetStatus() {
	case reqClaimed:
		if r.GetOwner() == "" {
			return bad("claimed without an owner")
		}
	case reqUnclaimed, reqCompleted:
		if r.GetOwner() != "" || (r.GetStatus() == reqUnclaimed && len(r.GetReserved()) != 0) {
			return bad("owner or reservations without a claim")
		}
	default:
		return bad("no status")
	}
	if r.GetStatus() != reqClaimed {
		return nil
	}
	for _, ref := range r.GetReserved() {
		kp := st.pools[ref.GetKeyId()]
		if kp == nil {
			return bad("reserves a presignature of an unknown key")
		}
		p, ok := kp.live[ref.GetId()]
		if !ok || p.GetStatus() != psReserved || p.GetRequestId() != r.GetId() {
			return bad("reservation does not match the pool")
		}
	}
	return nil
}
