package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/node"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/store"
)

// chooseVictim picks the node the demo kills from the nodes' statuses: the
// one that owns the most unfinished requests (raft's count), so that the
// failover has the most to show; among equals a follower, whose loss the
// cluster feels least, then the one with more Sessions running, then by
// name. When no node owns anything it picks one all the same. It returns
// "" for no status.
func chooseVictim(st []nodeStatus) string {
	if len(st) == 0 {
		return ""
	}
	best := slices.MaxFunc(st, func(a, b nodeStatus) int {
		return cmp.Or(
			cmp.Compare(a.Requests, b.Requests),
			cmp.Compare(b2i(!isLeader(a)), b2i(!isLeader(b))),
			cmp.Compare(len(a.Sessions), len(b.Sessions)),
			strings.Compare(b.NodeID, a.NodeID),
		)
	})
	return best.NodeID
}

func isLeader(s nodeStatus) bool { return s.Raft.LeaderID != "" && s.Raft.LeaderID == s.NodeID }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// role names a node's raft role.
func role(s nodeStatus) string {
	if isLeader(s) {
		return "leader"
	}
	return "follower"
}

// takeover is one unfinished request of the killed node, followed until
// another node has taken it over.
type takeover struct {
	request string
	// by is the node seen working on the request after the kill, or the
	// one raft says claimed it when it finished between two looks.
	by string
	// at is when another node took it over, as the surviving nodes report
	// it: the step of its Session that the demo first saw there, or else
	// its claim as raft records it. Zero until then.
	at time.Time
	// skip says why the request does not count towards the failover time.
	skip string
	// outcome is its final state in the workspace, once it has one.
	outcome string
}

// failover follows the killed node's unfinished requests to the nodes
// that finish them, and measures how long each waited: from the kill to
// its takeover.
type failover struct {
	victim   string
	killedAt time.Time
	// owned is what raft said the victim owned just before the kill;
	// releasedAt when a surviving node first showed it owning none.
	owned      int
	releasedAt time.Time
	reqs       []*takeover
}

func newFailover(victim string, killedAt time.Time, owned int, requests []string) *failover {
	f := &failover{victim: victim, killedAt: killedAt, owned: owned}
	for _, r := range requests {
		f.reqs = append(f.reqs, &takeover{request: r})
	}
	return f
}

func (f *failover) find(request string) *takeover {
	for _, t := range f.reqs {
		if t.request == request {
			return t
		}
	}
	return nil
}

// since formats the time from the kill to t.
func (f *failover) since(t time.Time) string {
	return fmt.Sprintf("%.2f s after the kill", t.Sub(f.killedAt).Seconds())
}

// sawSessions takes the Sessions that node, a survivor, runs, and returns
// a line for each of the victim's requests it shows taken over.
func (f *failover) sawSessions(node string, sessions []actors.SessionStatus) []string {
	var lines []string
	for _, s := range sessions {
		t := f.find(s.Request)
		if t == nil || !t.at.IsZero() || t.skip != "" {
			continue
		}
		if s.Since.Before(f.killedAt) {
			// Raft had already given it to this node (a release of a
			// busy owner, say): the kill did not move it.
			t.skip = "it was on " + node + " before the kill"
			lines = append(lines, fmt.Sprintf("%s was already on %s before the kill", t.request, node))
			continue
		}
		t.by, t.at = node, s.Since
		lines = append(lines, fmt.Sprintf("%s taken over by %s (session at step %s), %s", t.request, node, s.Step, f.since(t.at)))
	}
	return lines
}

// sawOwned takes the number of unfinished requests raft says the victim
// owns, as leader sees it, and returns a line when they are first all gone.
func (f *failover) sawOwned(owned int, leader string, now time.Time) []string {
	if f.owned == 0 || owned != 0 || !f.releasedAt.IsZero() {
		return nil
	}
	f.releasedAt = now
	return []string{fmt.Sprintf("raft shows %s owning nothing any more: the leader (%s) released its requests; seen %s",
		f.victim, leader, f.since(now))}
}

// sawRequest takes a request's state in the workspace and returns a line
// when one of the victim's requests has reached its final state. A
// request that finished between two looks is placed by raft's record of
// it, which record looks up on a surviving node; until one shows it
// completed, the request waits for the next look.
func (f *failover) sawRequest(r *protocol.WsRequest, record func(id string) (node.RequestListing, bool)) []string {
	t := f.find(r.GetId())
	if t == nil || t.outcome != "" || !store.Terminal(r.GetState()) {
		return nil
	}
	done := time.Unix(0, r.GetCompletedAt())
	if t.at.IsZero() && t.skip == "" {
		if done.Before(f.killedAt) {
			t.skip = "it finished before the kill"
		} else {
			l, ok := record(t.request)
			switch {
			case !ok || l.Status != "completed":
				return nil
			case l.LastOwner == f.victim || l.ClaimedAt == nil:
				t.skip = fmt.Sprintf("%s finished it as it died, before any other node could take it", f.victim)
			default:
				t.by, t.at = l.LastOwner, *l.ClaimedAt
			}
		}
	}
	t.outcome = stateName(r.GetState())
	if t.skip != "" {
		return []string{fmt.Sprintf("%s %s: %s", t.request, t.outcome, t.skip)}
	}
	return []string{fmt.Sprintf("%s %s by %s, %s", t.request, t.outcome, t.by, f.since(done))}
}

// resolved reports whether every one of the victim's requests has been
// taken over, or does not count.
func (f *failover) resolved() bool {
	for _, t := range f.reqs {
		if t.at.IsZero() && t.skip == "" {
			return false
		}
	}
	return true
}

// times returns how long each counted request waited from the kill to its
// takeover, shortest first.
func (f *failover) times() []time.Duration {
	var d []time.Duration
	for _, t := range f.reqs {
		if !t.at.IsZero() {
			d = append(d, t.at.Sub(f.killedAt))
		}
	}
	slices.Sort(d)
	return d
}

// failoverFigures returns the longest and the median (the lower one of an
// even count, by nearest rank) of sorted durations d; ok is false for none.
func failoverFigures(d []time.Duration) (longest, median time.Duration, ok bool) {
	if len(d) == 0 {
		return 0, 0, false
	}
	return d[len(d)-1], d[(len(d)+1)/2-1], true
}

// stateName is a workspace request state as the demo shows it.
func stateName(s protocol.WsRequestState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "WS_REQUEST_STATE_"))
}
