package cluster

import (
	"bytes"
	"maps"
	"slices"

	"github.com/coterie-mpc/coterie/protocol"
)

const (
	psAvailable = protocol.ClusterPresignatureStatus_CLUSTER_PRESIGNATURE_STATUS_AVAILABLE
	psReserved  = protocol.ClusterPresignatureStatus_CLUSTER_PRESIGNATURE_STATUS_RESERVED
	psUsed      = protocol.ClusterPresignatureStatus_CLUSTER_PRESIGNATURE_STATUS_USED
	psBurned    = protocol.ClusterPresignatureStatus_CLUSTER_PRESIGNATURE_STATUS_BURNED
)

// keyPool is the presignature pool of one key.
//
// Each presignature is admitted once, by construction: its Add carries the
// proposing node's sequence number for the key (origin_seq), which the
// sealed share's associated data binds, and the FSM admits only numbers
// above the node's high-water mark. Replaying an Add, however long ago it
// was applied, is refused, and the same sealed share under another number
// or node does not open. Once admitted, a presignature is live (available or
// reserved) and then spent (used or burned); reserving is possible only from
// available, so it is reserved at most once (I1).
//
// Memory is bounded: one high-water mark per node and key, the live
// presignatures, and the spentRetained most recent spent ones (kept only
// to name the reason when one is asked for again; the highest seqs, so
// that replicas that spend in different batches still agree).
type keyPool struct {
	keyID string
	// nextSeq orders the pool: each added presignature gets the next.
	nextSeq uint64
	// high is each node's highest admitted origin_seq.
	high  map[string]uint64
	live  map[string]*protocol.ClusterPresignatureState
	spent map[string]*protocol.ClusterPresignatureState
	// spentSeqs holds the seqs of spent, ascending; spentIDs maps them back.
	spentSeqs []uint64
	spentIDs  map[uint64]string
}

func newKeyPool(key string) *keyPool {
	return &keyPool{
		keyID:    key,
		high:     map[string]uint64{},
		live:     map[string]*protocol.ClusterPresignatureState{},
		spent:    map[string]*protocol.ClusterPresignatureState{},
		spentIDs: map[uint64]string{},
	}
}

// spentError returns the error for touching a spent presignature.
func spentError(key string, p *protocol.ClusterPresignatureState) error {
	if p.GetStatus() == psBurned {
		return errorf(ErrPresignatureBurned, "key %q, presignature %q", key, p.GetId())
	}
	return errorf(ErrPresignatureUsed, "key %q, presignature %q", key, p.GetId())
}

// addPresignatures admits a batch to a key's pool, all or nothing, and with
// reserve_for reserves it for a request the proposer owns in the same step.
func (s *state) addPresignatures(node string, a *protocol.ClusterPresignaturesAdded) ([]Event, error) {
	key := a.GetKeyId()
	var owned *protocol.ClusterRequestState
	if a.GetReserveFor() != "" {
		r, err := s.owned(node, a.GetReserveFor())
		if err != nil {
			return nil, err
		}
		owned = r
	}
	kp := s.pools[key]
	if kp == nil {
		kp = newKeyPool(key)
	}
	high := kp.high[node]
	epoch := s.keys[key].GetEpoch()
	for _, p := range a.GetPresignatures() {
		if len(epoch) > 0 && !bytes.Equal(epoch, p.GetKeyEpoch()) {
			return nil, errorf(ErrStaleKey, "key %q holds the share of epoch %x; presignature %q was made with %x",
				key, epochPrefix(epoch), p.GetId(), epochPrefix(p.GetKeyEpoch()))
		}
		if p.GetOriginSeq() <= high {
			return nil, errorf(ErrPresignatureReplayed, "key %q, node %q, presignature %q has number %d, high-water mark %d",
				key, node, p.GetId(), p.GetOriginSeq(), high)
		}
		high = p.GetOriginSeq()
		if lp, ok := kp.live[p.GetId()]; ok {
			if lp.GetStatus() == psReserved {
				return nil, errorf(ErrPresignatureUsed, "key %q, presignature %q is reserved", key, p.GetId())
			}
			return nil, errorf(ErrPresignatureExists, "key %q, presignature %q", key, p.GetId())
		}
		if sp, ok := kp.spent[p.GetId()]; ok {
			return nil, spentError(key, sp)
		}
	}
	s.pools[key] = kp
	kp.high[node] = high
	for _, p := range a.GetPresignatures() {
		kp.live[p.GetId()] = &protocol.ClusterPresignatureState{
			Id:        p.GetId(),
			Seq:       kp.nextSeq,
			Status:    psAvailable,
			Sealed:    slices.Clone(p.GetSealed()),
			Origin:    node,
			OriginSeq: p.GetOriginSeq(),
		}
		kp.nextSeq++
	}
	evs := []Event{{Kind: EventPresignaturesAdded, KeyID: key, Count: len(a.GetPresignatures())}}
	if owned != nil {
		if d := a.GetDecision(); d != nil {
			evs = append(evs, s.decide(node, owned, d))
		}
		// validateCommand allows reserve_for with exactly one presignature.
		evs = append(evs, s.reserveFor(node, owned, key, kp.live[a.GetPresignatures()[0].GetId()]))
	}
	return evs, nil
}

// refreshKey replaces the share of a key record with a refreshed one and
// burns every live presignature of the key, available or reserved: they
// were made with the old share (a Session whose reserved presignature
// burns reserves another). Only a refresh that started from the share the
// record holds applies: of two started from the same share, the first to
// commit wins and the second gets ErrStaleKey. A record whose epoch was
// never recorded accepts any.
func (s *state) refreshKey(at int64, c *protocol.ClusterKeyRefreshed) ([]Event, error) {
	key := c.GetKeyId()
	k := s.keys[key]
	switch {
	case k == nil:
		return nil, errorf(ErrUnknownKey, "%q", key)
	case len(k.GetEpoch()) > 0 && !bytes.Equal(k.GetEpoch(), c.GetFromEpoch()):
		return nil, errorf(ErrStaleKey, "key %q holds the share of epoch %x; the refresh started from %x",
			key, epochPrefix(k.GetEpoch()), epochPrefix(c.GetFromEpoch()))
	}
	k.Sealed = slices.Clone(c.GetSealed())
	k.Epoch = slices.Clone(c.GetEpoch())
	k.RefreshedAtUnixNano = at
	burned := 0
	if kp := s.pools[key]; kp != nil {
		for _, id := range slices.Sorted(maps.Keys(kp.live)) {
			s.spend(&protocol.ClusterPresignatureRef{KeyId: key, Id: id}, psBurned)
			burned++
		}
	}
	return []Event{{Kind: EventKeyRefreshed, KeyID: key, Count: burned}}, nil
}

// epochPrefix cuts an epoch for messages.
func epochPrefix(epoch []byte) []byte { return epoch[:min(8, len(epoch))] }

// available returns a presignature that may be reserved, or why not. An
// empty id picks the key's oldest available presignature.
func (s *state) available(key, id string) (*protocol.ClusterPresignatureState, error) {
	kp := s.pools[key]
	if id == "" {
		if p := kp.oldestAvailable(); p != nil {
			return p, nil
		}
		return nil, errorf(ErrPoolEmpty, "key %q", key)
	}
	if kp == nil {
		return nil, errorf(ErrUnknownPresignature, "key %q, presignature %q", key, id)
	}
	if p, ok := kp.live[id]; ok {
		if p.GetStatus() != psAvailable {
			return nil, errorf(ErrPresignatureUsed, "key %q, presignature %q is reserved by request %q", key, id, p.GetRequestId())
		}
		return p, nil
	}
	if p, ok := kp.spent[id]; ok {
		return nil, spentError(key, p)
	}
	return nil, errorf(ErrUnknownPresignature, "key %q, presignature %q", key, id)
}

// oldestAvailable returns the available presignature with the lowest seq,
// or nil. Live presignatures are few (the pool's target depth plus those
// in flight), so a scan is cheap.
func (kp *keyPool) oldestAvailable() *protocol.ClusterPresignatureState {
	if kp == nil {
		return nil
	}
	var best *protocol.ClusterPresignatureState
	for _, p := range kp.live {
		if p.GetStatus() == psAvailable && (best == nil || p.GetSeq() < best.GetSeq()) {
			best = p
		}
	}
	return best
}

// spend moves a reserved presignature from live to spent, dropping its
// sealed share: nothing may ever read it again.
func (s *state) spend(ref *protocol.ClusterPresignatureRef, status protocol.ClusterPresignatureStatus) {
	kp := s.pools[ref.GetKeyId()]
	if kp == nil {
		return
	}
	p, ok := kp.live[ref.GetId()]
	if !ok {
		return
	}
	delete(kp.live, p.GetId())
	p.Status = status
	p.Sealed = nil
	kp.addSpent(p)
}

// addSpent inserts p into the spent set and trims it to spentRetained.
func (kp *keyPool) addSpent(p *protocol.ClusterPresignatureState) {
	kp.spent[p.GetId()] = p
	i, _ := slices.BinarySearch(kp.spentSeqs, p.GetSeq())
	kp.spentSeqs = slices.Insert(kp.spentSeqs, i, p.GetSeq())
	kp.spentIDs[p.GetSeq()] = p.GetId()
	for len(kp.spentSeqs) > spentRetained {
		seq := kp.spentSeqs[0]
		kp.spentSeqs = kp.spentSeqs[1:]
		delete(kp.spent, kp.spentIDs[seq])
		delete(kp.spentIDs, seq)
	}
}

// highWater returns the pool's high-water marks sorted by node.
func (kp *keyPool) highWater() []*protocol.ClusterHighWater {
	out := make([]*protocol.ClusterHighWater, 0, len(kp.high))
	for _, n := range slices.Sorted(maps.Keys(kp.high)) {
		out = append(out, &protocol.ClusterHighWater{Node: n, Seq: kp.high[n]})
	}
	return out
}
