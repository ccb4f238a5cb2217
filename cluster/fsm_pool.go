package cluster

import (
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
// Every added presignature gets the next sequence number of its key, so
// each presignature the FSM has ever seen is either live (available or
// reserved) or spent (used or burned), and a spent one never comes back:
// reserving is possible only from live, and only from available. The
// spent set keeps the spentRetained highest sequence numbers, so memory
// stays bounded; dropping the lowest is order-independent, so replicas that
// spend in different batches still agree.
type keyPool struct {
	keyID   string
	nextSeq uint64
	live    map[string]*protocol.ClusterPresignatureState
	spent   map[string]*protocol.ClusterPresignatureState
	// spentSeqs holds the seqs of spent, ascending; spentIDs maps them back.
	spentSeqs []uint64
	spentIDs  map[uint64]string
}

func newKeyPool(key string) *keyPool {
	return &keyPool{
		keyID:    key,
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

// addPresignatures adds a batch to a key's pool, all or nothing.
func (s *state) addPresignatures(a *protocol.ClusterPresignaturesAdded) ([]Event, error) {
	key := a.GetKeyId()
	kp := s.pools[key]
	if kp != nil {
		for _, p := range a.GetPresignatures() {
			if lp, ok := kp.live[p.GetId()]; ok {
				if lp.GetStatus() == psReserved {
					// Taken already: adding it again would offer it twice.
					return nil, errorf(ErrPresignatureUsed, "key %q, presignature %q is reserved", key, p.GetId())
				}
				return nil, errorf(ErrPresignatureExists, "key %q, presignature %q", key, p.GetId())
			}
			if sp, ok := kp.spent[p.GetId()]; ok {
				return nil, spentError(key, sp)
			}
		}
	} else {
		kp = newKeyPool(key)
		s.pools[key] = kp
	}
	for _, p := range a.GetPresignatures() {
		kp.live[p.GetId()] = &protocol.ClusterPresignatureState{
			Id:     p.GetId(),
			Seq:    kp.nextSeq,
			Status: psAvailable,
			Sealed: slices.Clone(p.GetSealed()),
		}
		kp.nextSeq++
	}
	return []Event{{Kind: EventPresignaturesAdded, KeyID: key, Count: len(a.GetPresignatures())}}, nil
}

// available returns a presignature that may be reserved, or why not.
func (s *state) available(key, id string) (*protocol.ClusterPresignatureState, error) {
	kp := s.pools[key]
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
