package cluster

import (
	"slices"

	"github.com/coterie-mpc/coterie/protocol"
)

const (
	reqClaimed   = protocol.ClusterRequestStatus_CLUSTER_REQUEST_STATUS_CLAIMED
	reqUnclaimed = protocol.ClusterRequestStatus_CLUSTER_REQUEST_STATUS_UNCLAIMED
	reqCompleted = protocol.ClusterRequestStatus_CLUSTER_REQUEST_STATUS_COMPLETED
)

// claim makes node the owner of a request (I2): the first claim that
// commits wins; a claim by the owner again is a no-op; a released request is
// claimed again with the next attempt number.
func (s *state) claim(node string, at int64, c *protocol.ClusterClaim) ([]Event, error) {
	id := c.GetRequestId()
	r, ok := s.requests[id]
	if !ok {
		r = &protocol.ClusterRequestState{Id: id, ApiUserId: c.GetApiUserId()}
		s.requests[id] = r
	}
	switch r.GetStatus() {
	case reqClaimed:
		if r.GetOwner() == node {
			return nil, nil
		}
		return nil, errorf(ErrClaimed, "request %q is owned by %q", id, r.GetOwner())
	case reqCompleted:
		return nil, errorf(ErrCompleted, "request %q", id)
	}
	r.Status = reqClaimed
	r.Owner = node
	r.LastOwner = node
	r.Attempt++
	r.ClaimedAtUnixNano = at
	if r.ApiUserId == "" {
		r.ApiUserId = c.GetApiUserId()
	}
	return []Event{{Kind: EventClaimed, RequestID: id, APIUserID: r.GetApiUserId(), Node: node}}, nil
}

// owned returns the request if node owns it, or the error saying why not.
func (s *state) owned(node, id string) (*protocol.ClusterRequestState, error) {
	r, ok := s.requests[id]
	if !ok {
		return nil, errorf(ErrUnknownRequest, "request %q", id)
	}
	switch {
	case r.GetStatus() == reqCompleted:
		return nil, errorf(ErrCompleted, "request %q", id)
	case r.GetStatus() != reqClaimed || r.GetOwner() != node:
		return nil, errorf(ErrNotOwner, "node %q, request %q", node, id)
	}
	return r, nil
}

// reserve binds an available presignature to a request its proposer owns
// (I1): a presignature is reserved at most once, ever. With no presignature
// id the FSM picks the key's oldest available one, so Sessions reserving at
// once never collide.
func (s *state) reserve(node string, c *protocol.ClusterReserve) ([]Event, error) {
	r, err := s.owned(node, c.GetRequestId())
	if err != nil {
		return nil, err
	}
	p, err := s.available(c.GetKeyId(), c.GetPresignatureId())
	if err != nil {
		return nil, err
	}
	var evs []Event
	if d := c.GetDecision(); d != nil {
		evs = append(evs, s.decide(node, r, d))
	}
	return append(evs, s.reserveFor(node, r, c.GetKeyId(), p)), nil
}

// reserveFor reserves the available presignature p of key for r.
func (s *state) reserveFor(node string, r *protocol.ClusterRequestState, key string, p *protocol.ClusterPresignatureState) Event {
	p.Status = psReserved
	p.RequestId = r.GetId()
	r.Reserved = append(r.Reserved, &protocol.ClusterPresignatureRef{KeyId: key, Id: p.GetId()})
	return Event{
		Kind: EventReserved, RequestID: r.GetId(), APIUserID: r.GetApiUserId(), Node: node,
		Presignature: PresignatureRef{KeyID: key, ID: p.GetId()},
	}
}

// complete records a request's outcome. Every presignature the request
// reserved becomes used, whatever the outcome, because its online round may
// have started.
func (s *state) complete(node string, at int64, c *protocol.ClusterComplete) ([]Event, error) {
	r, err := s.owned(node, c.GetRequestId())
	if err != nil {
		return nil, err
	}
	for _, ref := range r.GetReserved() {
		s.spend(ref, psUsed)
	}
	r.Status = reqCompleted
	r.Owner = ""
	r.Outcome = c.GetOutcome()
	r.Reason = c.GetReason()
	r.CompletedAtUnixNano = at
	s.completionSeq++
	r.CompletionSeq = s.completionSeq
	s.completed = append(s.completed, r.GetId())
	for len(s.completed) > completedRetained {
		delete(s.requests, s.completed[0])
		s.completed = s.completed[1:]
	}
	return []Event{{
		Kind: EventCompleted, RequestID: r.GetId(), APIUserID: r.GetApiUserId(), Node: node,
		Outcome: outcomeFromProto(r.GetOutcome()),
	}}, nil
}

// release returns node's unfinished requests (of apiUser alone, when it is
// not empty) to unclaimed and burns the presignatures they reserved.
// Releasing a node that owns nothing is a no-op, so it may be repeated
// safely.
func (s *state) release(node, apiUser string) []Event {
	var ids []string
	for id, r := range s.requests {
		if r.GetStatus() == reqClaimed && r.GetOwner() == node && (apiUser == "" || r.GetApiUserId() == apiUser) {
			ids = append(ids, id)
		}
	}
	// Sorted so that events come out in the same order on every replica.
	slices.Sort(ids)
	evs := make([]Event, 0, len(ids))
	for _, id := range ids {
		r := s.requests[id]
		for _, ref := range r.GetReserved() {
			s.spend(ref, psBurned)
		}
		burned := len(r.GetReserved())
		r.Burned += uint32(burned)
		r.Reserved = nil
		r.Status = reqUnclaimed
		r.Owner = ""
		evs = append(evs, Event{Kind: EventReleased, RequestID: id, APIUserID: r.GetApiUserId(), Node: node, Burned: burned})
	}
	return evs
}
