package cluster

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"maps"
	"slices"
	"time"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/protocol"
)

// Reader is the read side of the cluster state that the rest of the node
// uses. Both *FSM and *Cluster implement it.
//
// All methods are safe for concurrent use, return copies the caller owns,
// and read the local replica: on a follower they may lag the leader by the
// commits it has not applied yet (usually a few milliseconds; as long as a
// partition lasts, while cut off). A node's own successful proposal is
// visible to it when Propose returns.
type Reader interface {
	// Request returns the record of a request, or false if the FSM never
	// saw it or no longer retains it.
	Request(id string) (RequestInfo, bool)
	// Owner returns the node that owns a request, or false when nobody does.
	Owner(id string) (string, bool)
	// Unclaimed returns the requests that a Release returned to unclaimed
	// and nobody has claimed since, sorted by id.
	Unclaimed() []RequestInfo
	// OwnedBy returns the ids of the unfinished requests node owns, sorted.
	OwnedBy(node string) []string
	// PoolDepth returns how many presignatures of key are available.
	PoolDepth(key string) int
	// PoolDepths returns the available presignatures per key.
	PoolDepths() map[string]int
	// Available returns the ids of the available presignatures of key, in
	// the order they were added.
	Available(key string) []string
	// Presignature returns a presignature of key, live or recently spent.
	Presignature(key, id string) (PresignatureInfo, bool)
	// HighWater returns the highest origin number node has added for key,
	// 0 if none.
	HighWater(key, node string) uint64
	// APIUsers returns every API user record, sorted by id.
	APIUsers() []Record
	// APIUser returns one API user record.
	APIUser(id string) (Record, bool)
	// KeyRecords returns every key record, sorted by id.
	KeyRecords() []Record
	// KeyRecord returns one key record.
	KeyRecord(id string) (Record, bool)
	// AppliedIndex returns the raft index of the last command applied.
	AppliedIndex() uint64
}

var _ Reader = (*FSM)(nil)

// Request implements Reader.
func (f *FSM) Request(id string) (RequestInfo, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.st.requests[id]
	if !ok {
		return RequestInfo{}, false
	}
	return requestInfo(r), true
}

func requestInfo(r *protocol.ClusterRequestState) RequestInfo {
	info := RequestInfo{
		ID:          r.GetId(),
		APIUserID:   r.GetApiUserId(),
		Status:      statusFromProto(r.GetStatus()),
		Owner:       r.GetOwner(),
		LastOwner:   r.GetLastOwner(),
		Attempt:     int(r.GetAttempt()),
		ClaimedAt:   unixNano(r.GetClaimedAtUnixNano()),
		Burned:      int(r.GetBurned()),
		Outcome:     outcomeFromProto(r.GetOutcome()),
		Reason:      r.GetReason(),
		CompletedAt: unixNano(r.GetCompletedAtUnixNano()),
	}
	for _, ref := range r.GetReserved() {
		info.Reserved = append(info.Reserved, PresignatureRef{KeyID: ref.GetKeyId(), ID: ref.GetId()})
	}
	if d, ok := decisionFromProto(r.GetDecision()); ok {
		info.Decision = &d
	}
	return info
}

// Owner implements Reader.
func (f *FSM) Owner(id string) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.st.requests[id]
	if !ok || r.GetStatus() != reqClaimed {
		return "", false
	}
	return r.GetOwner(), true
}

// Unclaimed implements Reader.
func (f *FSM) Unclaimed() []RequestInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []RequestInfo
	for _, id := range slices.Sorted(maps.Keys(f.st.requests)) {
		if r := f.st.requests[id]; r.GetStatus() == reqUnclaimed {
			out = append(out, requestInfo(r))
		}
	}
	return out
}

// OwnedBy implements Reader.
func (f *FSM) OwnedBy(node string) []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []string
	for id, r := range f.st.requests {
		if r.GetStatus() == reqClaimed && r.GetOwner() == node {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// owners returns every node that owns an unfinished request.
func (f *FSM) owners() map[string]bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := map[string]bool{}
	for _, r := range f.st.requests {
		if r.GetStatus() == reqClaimed {
			out[r.GetOwner()] = true
		}
	}
	return out
}

// PoolDepth implements Reader.
func (f *FSM) PoolDepth(key string) int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.pools[key].depth()
}

func (kp *keyPool) depth() int {
	if kp == nil {
		return 0
	}
	n := 0
	for _, p := range kp.live {
		if p.GetStatus() == psAvailable {
			n++
		}
	}
	return n
}

// PoolDepths implements Reader.
func (f *FSM) PoolDepths() map[string]int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[string]int, len(f.st.pools))
	for key, kp := range f.st.pools {
		out[key] = kp.depth()
	}
	return out
}

// Available implements Reader.
func (f *FSM) Available(key string) []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	kp := f.st.pools[key]
	if kp == nil {
		return nil
	}
	var ps []*protocol.ClusterPresignatureState
	for _, p := range kp.live {
		if p.GetStatus() == psAvailable {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, bySeq)
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.GetId()
	}
	return out
}

// Presignature implements Reader.
func (f *FSM) Presignature(key, id string) (PresignatureInfo, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	kp := f.st.pools[key]
	if kp == nil {
		return PresignatureInfo{}, false
	}
	p, ok := kp.live[id]
	if !ok {
		if p, ok = kp.spent[id]; !ok {
			return PresignatureInfo{}, false
		}
	}
	info := presignatureInfo(key, p)
	info.Sealed = slices.Clone(p.GetSealed())
	return info, true
}

// presignatureInfo copies p's record without its sealed share.
func presignatureInfo(key string, p *protocol.ClusterPresignatureState) PresignatureInfo {
	return PresignatureInfo{
		KeyID:     key,
		ID:        p.GetId(),
		Seq:       p.GetSeq(),
		Origin:    p.GetOrigin(),
		OriginSeq: p.GetOriginSeq(),
		Status:    presignatureStatusFromProto(p.GetStatus()),
		RequestID: p.GetRequestId(),
	}
}

// Requests returns every request the FSM retains, sorted by id: the
// unfinished ones and the completedRetained most recent completed ones.
// It is for outside checkers (the admin API's listing); the node itself
// reads requests one at a time through Reader.
func (f *FSM) Requests() []RequestInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]RequestInfo, 0, len(f.st.requests))
	for _, id := range slices.Sorted(maps.Keys(f.st.requests)) {
		out = append(out, requestInfo(f.st.requests[id]))
	}
	return out
}

// Presignatures returns every presignature the FSM retains, live or among
// the spentRetained most recent spent ones of each key, sorted by key and
// then by seq, without their sealed shares. Like Requests, it is for
// outside checkers.
func (f *FSM) Presignatures() []PresignatureInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []PresignatureInfo
	for _, key := range slices.Sorted(maps.Keys(f.st.pools)) {
		kp := f.st.pools[key]
		ps := slices.Collect(maps.Values(kp.live))
		ps = slices.AppendSeq(ps, maps.Values(kp.spent))
		slices.SortFunc(ps, bySeq)
		for _, p := range ps {
			out = append(out, presignatureInfo(key, p))
		}
	}
	return out
}

// HighWater implements Reader.
func (f *FSM) HighWater(key, node string) uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if kp := f.st.pools[key]; kp != nil {
		return kp.high[node]
	}
	return 0
}

func record(r *protocol.ClusterRecord) Record {
	return Record{
		ID:      r.GetId(),
		OwnerID: r.GetOwnerId(),
		Public:  slices.Clone(r.GetPublic()),
		Sealed:  slices.Clone(r.GetSealed()),
		AddedAt: unixNano(r.GetAddedAtUnixNano()),
		Epoch:   slices.Clone(r.GetEpoch()),

		RefreshedAt: unixNano(r.GetRefreshedAtUnixNano()),
	}
}

// records and record take a selector because f.st changes on Restore and
// may only be read under the lock.
func (f *FSM) records(sel func(*state) map[string]*protocol.ClusterRecord) []Record {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m := sel(f.st)
	out := make([]Record, 0, len(m))
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, record(m[id]))
	}
	return out
}

func (f *FSM) record(sel func(*state) map[string]*protocol.ClusterRecord, id string) (Record, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := sel(f.st)[id]
	if !ok {
		return Record{}, false
	}
	return record(r), true
}

func users(s *state) map[string]*protocol.ClusterRecord { return s.users }
func keys(s *state) map[string]*protocol.ClusterRecord  { return s.keys }

// APIUsers implements Reader.
func (f *FSM) APIUsers() []Record { return f.records(users) }

// APIUser implements Reader.
func (f *FSM) APIUser(id string) (Record, bool) { return f.record(users, id) }

// KeyRecords implements Reader.
func (f *FSM) KeyRecords() []Record { return f.records(keys) }

// KeyRecord implements Reader.
func (f *FSM) KeyRecord(id string) (Record, bool) { return f.record(keys, id) }

// AppliedIndex implements Reader.
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.appliedIndex
}

// WaitApplied blocks until the local FSM has applied index, or ctx ends.
func (f *FSM) WaitApplied(ctx context.Context, index uint64) error {
	for {
		f.mu.RLock()
		done, ch := f.st.appliedIndex >= index, f.applied
		f.mu.RUnlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// The Reader methods read the local FSM; see Reader for staleness.

// Request implements Reader.
func (c *Cluster) Request(id string) (RequestInfo, bool) { return c.fsm.Request(id) }

// Owner implements Reader.
func (c *Cluster) Owner(id string) (string, bool) { return c.fsm.Owner(id) }

// Unclaimed implements Reader.
func (c *Cluster) Unclaimed() []RequestInfo { return c.fsm.Unclaimed() }

// OwnedBy implements Reader.
func (c *Cluster) OwnedBy(node string) []string { return c.fsm.OwnedBy(node) }

// PoolDepth implements Reader.
func (c *Cluster) PoolDepth(key string) int { return c.fsm.PoolDepth(key) }

// PoolDepths implements Reader.
func (c *Cluster) PoolDepths() map[string]int { return c.fsm.PoolDepths() }

// Available implements Reader.
func (c *Cluster) Available(key string) []string { return c.fsm.Available(key) }

// Presignature implements Reader.
func (c *Cluster) Presignature(key, id string) (PresignatureInfo, bool) {
	return c.fsm.Presignature(key, id)
}

// HighWater implements Reader.
func (c *Cluster) HighWater(key, node string) uint64 { return c.fsm.HighWater(key, node) }

// APIUsers implements Reader.
func (c *Cluster) APIUsers() []Record { return c.fsm.APIUsers() }

// APIUser implements Reader.
func (c *Cluster) APIUser(id string) (Record, bool) { return c.fsm.APIUser(id) }

// KeyRecords implements Reader.
func (c *Cluster) KeyRecords() []Record { return c.fsm.KeyRecords() }

// KeyRecord implements Reader.
func (c *Cluster) KeyRecord(id string) (Record, bool) { return c.fsm.KeyRecord(id) }

// AppliedIndex implements Reader.
func (c *Cluster) AppliedIndex() uint64 { return c.fsm.AppliedIndex() }

// ClusterID returns the cluster's id, empty before Init.
func (f *FSM) ClusterID() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.clusterID
}

// Policy returns the cluster's attestation policy, and false before Init.
func (f *FSM) Policy() (enclave.Policy, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.st.clusterID == "" {
		return enclave.Policy{}, false
	}
	return policyFromProto(f.st.policy), true
}

// Members returns the member table, sorted by id.
func (f *FSM) Members() []Member {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Member, 0, len(f.st.members))
	for _, id := range slices.Sorted(maps.Keys(f.st.members)) {
		out = append(out, memberFromProto(f.st.members[id]))
	}
	return out
}

// MemberByID returns one member.
func (f *FSM) MemberByID(id string) (Member, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m, ok := f.st.members[id]
	if !ok {
		return Member{}, false
	}
	return memberFromProto(m), true
}

// Member implements PeerAuthorizer: it returns the id of the member whose
// identity key is pub.
func (f *FSM) Member(pub ed25519.PublicKey) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for id, m := range f.st.members {
		if bytes.Equal(m.GetIdentityKey(), pub) {
			return id, true
		}
	}
	return "", false
}

// JoinToken returns a live join token as of now: one that expired is
// reported missing, even before a command purges it.
func (f *FSM) JoinToken(id string, now time.Time) (JoinToken, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, ok := f.st.tokens[id]
	if !ok || t.GetExpiresAtUnixNano() <= now.UnixNano() {
		return JoinToken{}, false
	}
	return JoinToken{
		ID: t.GetId(), SecretHash: slices.Clone(t.GetSecretHash()), ExpiresAt: unixNano(t.GetExpiresAtUnixNano()),
		IssuedBy: t.GetIssuedBy(), UsedBy: slices.Clone(t.GetUsedBy()),
	}, true
}

// Callback returns the cluster's callback handler (its URL and public key,
// PKIX DER; both empty for a cluster that approves by itself), and false
// while none is recorded.
func (f *FSM) Callback() (url string, handlerKey []byte, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.st.callback == nil {
		return "", nil, false
	}
	return f.st.callback.GetUrl(), slices.Clone(f.st.callback.GetHandlerKey()), true
}
