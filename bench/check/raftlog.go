package check

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
)

// checkLogs judges the nodes' raft logs: they must agree index by index
// (InvLog), the ownership they replay to must be what each node's FSM
// lists (I2), and every signature's presignature must have been reserved
// for its request by the request's owner at the time (I6).
func checkLogs(rep *Report, recs Records) {
	merged := checkLogAgreement(rep, recs.Logs)
	rep.LogEntries = len(merged)
	if len(merged) == 0 {
		return
	}
	// Replay the run of consecutive indexes from the lowest one held; a
	// log that starts after index 1 lost the start of some requests to a
	// snapshot, and nothing per request is judged from it.
	indexes := slices.Sorted(maps.Keys(merged))
	end := indexes[0]
	for _, i := range indexes[1:] {
		if i != end+1 {
			break
		}
		end = i
	}
	complete := indexes[0] == 1
	upTo := map[uint64][]int{} // index -> the nodes whose log ends there
	for n, l := range recs.Logs {
		if len(l.Entries) > 0 && l.Entries[len(l.Entries)-1].Index <= end {
			last := l.Entries[len(l.Entries)-1].Index
			upTo[last] = append(upTo[last], n)
		}
	}
	rp := newReplay()
	views := map[int]map[string]replayRequest{} // node (index in recs.Logs) -> its replayed requests
	for i := indexes[0]; i <= end; i++ {
		rp.apply(merged[i])
		for _, n := range upTo[i] {
			views[n] = rp.requestsCopy()
		}
	}
	if !complete {
		for _, r := range recs.Requests {
			if len(r.Signatures) > 0 {
				rep.LogNotJudged++
			}
		}
		return
	}
	checkReplayedOwners(rep, recs, views)
	checkReservations(rep, recs.Requests, rp)
}

// checkLogAgreement reports two nodes whose logs differ at one index, which
// raft's safety forbids, and returns the entries by index.
func checkLogAgreement(rep *Report, logs []NodeLog) map[uint64]LogEntry {
	merged := map[uint64]LogEntry{}
	from := map[uint64]string{}
	for _, l := range logs {
		for _, e := range l.Entries {
			seen, ok := merged[e.Index]
			if !ok {
				merged[e.Index], from[e.Index] = e, l.ID
				continue
			}
			if !sameEntry(seen, e) {
				rep.add(InvLog, entryRequest(seen, e), "index %d: node %s holds %s, node %s holds %s",
					e.Index, from[e.Index], describeEntry(seen), l.ID, describeEntry(e))
			}
		}
	}
	return merged
}

func sameEntry(a, b LogEntry) bool {
	if !a.ProposedAt.Equal(b.ProposedAt) {
		return false
	}
	a.ProposedAt, b.ProposedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// entryRequest names the request two differing entries concern, for the
// violation's request id.
func entryRequest(a, b LogEntry) string {
	if a.RequestID != "" {
		return a.RequestID
	}
	if b.RequestID != "" {
		return b.RequestID
	}
	return "-"
}

func describeEntry(e LogEntry) string {
	s := fmt.Sprintf("term %d %s", e.Term, e.Type)
	if e.Kind != "" {
		s += " " + e.Kind
	}
	if e.Node != "" {
		s += " by " + e.Node
	}
	for _, f := range []struct{ name, v string }{{"request", e.RequestID}, {"key", e.KeyID}, {"presignatures", strings.Join(e.Presignatures, ",")},
		{"released", e.ReleasedNode}, {"user", e.APIUserID}, {"outcome", e.Outcome}} {
		if f.v != "" {
			s += fmt.Sprintf(" %s %s", f.name, f.v)
		}
	}
	return s
}

// checkReplayedOwners reports a request whose state, replayed from the log
// up to where a node's log ends, is not what that node's FSM lists.
func checkReplayedOwners(rep *Report, recs Records, views map[int]map[string]replayRequest) {
	for n, l := range recs.Logs {
		view, ok := views[n]
		if !ok {
			continue
		}
		for _, fsm := range recs.Nodes {
			if fsm.ID != l.ID {
				continue
			}
			for _, r := range fsm.Requests {
				got, ok := view[r.ID]
				if !ok {
					rep.add(I2, r.ID, "node %s's FSM lists it %s, but the raft log never claimed it", fsm.ID, r.Status)
					continue
				}
				want := fmt.Sprintf("%s owner %q attempt %d reserved %v", r.Status, r.Owner, r.Attempt, r.Reserved)
				if replayed := got.String(); replayed != want {
					rep.add(I2, r.ID, "node %s's FSM lists it %s, its raft log replays to %s", fsm.ID, want, replayed)
				}
			}
		}
	}
}

// checkReservations judges I6 from the log: the presignature behind each
// of the workspace's signatures was reserved for the request, by a reserve
// (or an add with reserve_for) that its owner at the time committed.
func checkReservations(rep *Report, requests []Request, rp *replay) {
	for _, r := range requests {
		for _, s := range r.Signatures {
			if s.PresignID == "" {
				continue
			}
			rep.LogJudged++
			res := rp.reserved[s.PresignID]
			if res.request == r.ID {
				continue
			}
			var why []string
			if res.request != "" {
				why = append(why, fmt.Sprintf("the log reserved it for request %s at index %d", res.request, res.index))
			}
			for _, a := range rp.refused[s.PresignID] {
				why = append(why, fmt.Sprintf("a reserve for request %s by %s at index %d did not hold: %s", a.request, a.node, a.index, a.reason))
			}
			if len(why) == 0 {
				why = append(why, "the log never reserved it")
			}
			rep.add(I6, r.ID, "digest %d's signature used presignature %s, not reserved for the request by its owner: %s", s.Index, s.PresignID, strings.Join(why, "; "))
		}
	}
}

// replay is an implementation of the FSM's ownership and reservation rules
// independent of the cluster package's: Check replays the log with it
// rather than trust the nodes.
type replay struct {
	requests map[string]*replayRequest
	// pools holds each key's presignatures in the order they were added,
	// which is the order a reserve without an id picks them in.
	pools map[string][]*replayPresig
	byID  map[string]map[string]*replayPresig // key -> id -> presignature
	// reserved is each presignature's accepted reservation; refused the
	// reserves of it that the rules turned down.
	reserved map[string]reservation
	refused  map[string][]reservation
}

type replayRequest struct {
	status   string
	owner    string
	user     string
	attempt  int
	reserved []string
}

// String formats r as checkReplayedOwners compares it with a node's FSM.
func (r replayRequest) String() string {
	return fmt.Sprintf("%s owner %q attempt %d reserved %v", r.status, r.owner, r.attempt, r.reserved)
}

type presigState int

const (
	presigAvailable presigState = iota
	presigReserved
	presigSpent
)

type replayPresig struct {
	id    string
	state presigState
}

// reservation is a reserve of one presignature, accepted or refused.
type reservation struct {
	request, node string
	index         uint64
	reason        string
}

func newReplay() *replay {
	return &replay{requests: map[string]*replayRequest{}, pools: map[string][]*replayPresig{}, byID: map[string]map[string]*replayPresig{},
		reserved: map[string]reservation{}, refused: map[string][]reservation{}}
}

func (rp *replay) requestsCopy() map[string]replayRequest {
	out := make(map[string]replayRequest, len(rp.requests))
	for id, r := range rp.requests {
		c := *r
		c.reserved = slices.Clone(r.reserved)
		out[id] = c
	}
	return out
}

// apply applies one committed entry by the FSM's rules.
func (rp *replay) apply(e LogEntry) {
	if e.Type != cluster.LogTypeCommand {
		return
	}
	switch e.Kind {
	case cluster.KindClaim:
		r := rp.requests[e.RequestID]
		if r == nil {
			r = &replayRequest{status: StatusUnclaimed}
			rp.requests[e.RequestID] = r
		}
		if r.status == StatusUnclaimed {
			r.status, r.owner = StatusClaimed, e.Node
			r.attempt++
			if r.user == "" {
				r.user = e.APIUserID
			}
		}
	case cluster.KindReserve:
		id := ""
		if len(e.Presignatures) > 0 {
			id = e.Presignatures[0]
		}
		rp.reserve(e, id)
	case cluster.KindPresignaturesAdded:
		if e.RequestID != "" {
			if why := rp.notOwned(e); why != "" {
				for _, id := range e.Presignatures {
					rp.refused[id] = append(rp.refused[id], reservation{e.RequestID, e.Node, e.Index, why})
				}
				return
			}
		}
		known := rp.byID[e.KeyID]
		if known == nil {
			known = map[string]*replayPresig{}
			rp.byID[e.KeyID] = known
		}
		for _, id := range e.Presignatures {
			if known[id] != nil {
				return // added before: the FSM refuses the whole batch
			}
		}
		for _, id := range e.Presignatures {
			p := &replayPresig{id: id}
			known[id] = p
			rp.pools[e.KeyID] = append(rp.pools[e.KeyID], p)
		}
		if e.RequestID != "" && len(e.Presignatures) == 1 {
			rp.reserve(e, e.Presignatures[0])
		}
	case cluster.KindComplete:
		if rp.notOwned(e) != "" {
			return
		}
		r := rp.requests[e.RequestID]
		for _, id := range r.reserved {
			rp.spend(id)
		}
		r.status, r.owner = StatusCompleted, ""
	case cluster.KindKeyRefreshed:
		// A refresh burns every live presignature of its key. (One the FSM
		// refused, started from a share replaced since, burned nothing; the
		// log does not tell them apart, and the drill refreshes no key.)
		for _, p := range rp.byID[e.KeyID] {
			p.state = presigSpent
		}
	case cluster.KindRelease:
		if e.APIUserID != "" && e.ReleasedNode != e.Node {
			return // the FSM refuses another node's hand-back
		}
		for _, id := range slices.Sorted(maps.Keys(rp.requests)) {
			r := rp.requests[id]
			if r.status != StatusClaimed || r.owner != e.ReleasedNode || (e.APIUserID != "" && r.user != e.APIUserID) {
				continue
			}
			for _, p := range r.reserved {
				rp.spend(p)
			}
			r.status, r.owner, r.reserved = StatusUnclaimed, "", nil
		}
	}
}

// notOwned says why e's proposer does not own e's request, or "".
func (rp *replay) notOwned(e LogEntry) string {
	r := rp.requests[e.RequestID]
	switch {
	case r == nil:
		return "never claimed"
	case r.status == StatusCompleted:
		return "already completed"
	case r.status != StatusClaimed:
		return fmt.Sprintf("%s was not its owner: the request was %s", e.Node, r.status)
	case r.owner != e.Node:
		return fmt.Sprintf("%s was not its owner: %s was", e.Node, r.owner)
	}
	return ""
}

// reserve reserves presignature id of e's key for e's request, or the
// key's oldest available one when id is empty.
func (rp *replay) reserve(e LogEntry, id string) {
	why := rp.notOwned(e)
	var p *replayPresig
	if why == "" {
		if id == "" {
			for _, q := range rp.pools[e.KeyID] {
				if q.state == presigAvailable {
					p = q
					break
				}
			}
		} else if p = rp.byID[e.KeyID][id]; p == nil {
			why = "unknown presignature"
		} else if p.state != presigAvailable {
			why = "presignature not available"
		}
	}
	if why != "" {
		if id != "" {
			rp.refused[id] = append(rp.refused[id], reservation{e.RequestID, e.Node, e.Index, why})
		}
		return
	}
	if p == nil {
		return // the pool was empty
	}
	p.state = presigReserved
	r := rp.requests[e.RequestID]
	r.reserved = append(r.reserved, p.id)
	rp.reserved[p.id] = reservation{request: e.RequestID, node: e.Node, index: e.Index}
}

func (rp *replay) spend(id string) {
	for _, known := range rp.byID {
		if p := known[id]; p != nil && p.state == presigReserved {
			p.state = presigSpent
		}
	}
}
