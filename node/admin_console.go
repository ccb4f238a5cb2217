package node

import (
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/node/console"
)

// consolePoll is how often the console page asks for its state.
const consolePoll = 1500 * time.Millisecond

// maxConsoleInFlight bounds the unfinished requests the console lists;
// it counts the rest.
const maxConsoleInFlight = 50

// consoleEventBuffer is the console's subscription buffer: events past it
// are dropped, and the console's windows miss them.
const consoleEventBuffer = 1024

// newConsole returns the status console of the admin API, which reads the
// node's state and its recorder.
func (n *Node) newConsole(token string, secure bool) (*console.Console, error) {
	cfg := console.DefaultConfig()
	cfg.NodeID = n.cfg.NodeID
	cfg.Token = token
	cfg.State = n.ConsoleState
	cfg.Secure = secure
	cfg.Clock = n.clock
	cfg.Logger = n.componentLogger("console")
	return console.New(cfg)
}

// newRecorder returns the console's rolling windows on the node's clock.
func (n *Node) newRecorder() (*console.Recorder, error) {
	rcfg := console.DefaultRecorderConfig()
	rcfg.Clock = n.clock
	return console.NewRecorder(rcfg)
}

// startRecording feeds the console's recorder: the completed requests the
// FSM retains, then the cluster's events as the replica applies them, and
// the stage histograms once per step. It returns the function that stops
// it. Start calls it once the replica caught up, so that replaying the
// log does not pass for failovers happening now.
func (n *Node) startRecording() func() {
	events, unsub := n.cluster.Subscribe(consoleEventBuffer)
	n.seedRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range events {
			n.record(ev)
		}
	}()
	stopSampling := n.recorder.SampleEvery(n.stageSnapshots)
	return func() {
		stopSampling()
		unsub()
		<-done
	}
}

// seedRecorder records the completed requests the FSM retains, in the
// order they completed.
func (n *Node) seedRecorder() {
	var done []cluster.RequestInfo
	for _, r := range n.cluster.FSM().Requests() {
		if r.Status == cluster.StatusCompleted {
			done = append(done, r)
		}
	}
	slices.SortStableFunc(done, func(a, b cluster.RequestInfo) int { return a.CompletedAt.Compare(b.CompletedAt) })
	for _, r := range done {
		n.recorder.Completed(console.Decided{ID: r.ID, User: r.APIUserID, Node: r.LastOwner, Outcome: r.Outcome.String(),
			Reason: r.Reason, At: r.CompletedAt})
	}
}

// record hands one cluster event to the console's recorder.
func (n *Node) record(ev cluster.Event) {
	switch ev.Kind {
	case cluster.EventCompleted:
		d := console.Decided{ID: ev.RequestID, User: ev.APIUserID, Node: ev.Node, Outcome: ev.Outcome.String()}
		if r, ok := n.cluster.Request(ev.RequestID); ok {
			d.Reason, d.At = r.Reason, r.CompletedAt
		}
		n.recorder.Completed(d)
	case cluster.EventReleased:
		n.recorder.Released(ev.Index, ev.Node, ev.RequestID)
	case cluster.EventClaimed:
		n.recorder.Claimed(ev.Node, ev.RequestID)
	case cluster.EventPresignaturesAdded:
		n.recorder.PresignaturesAdded(ev.KeyID, ev.Count)
	}
}

// stageSnapshots returns the actors' stage histograms, nil before they
// run.
func (n *Node) stageSnapshots() map[string]*hdrhistogram.Snapshot {
	n.mu.Lock()
	srv := n.serve
	n.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.stages()
}

// ConsoleState returns what the status console shows: the node's health,
// the members, the users and their pools, the requests in flight, and the
// recorder's windows. It holds no secret.
func (n *Node) ConsoleState() console.State {
	now := n.clock.Now()
	_, h := n.Health()
	s := console.State{
		NodeID: n.cfg.NodeID, Time: now.UTC(), PollSeconds: consolePoll.Seconds(),
		Health:    console.Health{Status: h.Status, Reason: h.Reason, Phase: h.Phase},
		Decisions: n.recorder.Decisions(), Failovers: n.recorder.Failovers(), Latency: n.recorder.Latency(),
	}
	view, _ := n.ClusterView() // on error, what the member table says
	s.Cluster = consoleCluster(view, h.Status, now)
	var st actors.Status
	n.mu.Lock()
	srv := n.serve
	n.mu.Unlock()
	if srv != nil {
		st, _ = srv.status().(actors.Status)
	}
	s.Users = n.consoleUsers(st)
	s.InFlight = consoleInFlight(n.cluster, view.Members, n.cfg.NodeID, st, now)
	return s
}

// consoleCluster is the members of view as the console shows them;
// selfHealth is this node's health status.
func consoleCluster(view ClusterView, selfHealth string, now time.Time) console.Cluster {
	c := console.Cluster{ID: view.ClusterID, LeaderID: view.LeaderID, LivenessKnown: view.LivenessKnown, Members: []console.Member{}}
	since := func(t *time.Time) *float64 {
		if t == nil {
			return nil
		}
		s := max(now.Sub(*t).Seconds(), 0)
		return &s
	}
	for _, m := range view.Members {
		cm := console.Member{
			ID: m.ID, Address: m.Address, Role: m.Role, Liveness: m.Liveness, Location: m.Location, Enclave: m.Enclave.Kind,
			LastContactSeconds: since(m.LastContact), UnreachableSeconds: since(m.UnreachableSince),
			RequestsOwned: m.Load.RequestsOwned, Sessions: m.Load.Sessions, Capacity: m.Load.Capacity,
		}
		switch {
		case m.Raft != nil:
			cm.Health = selfHealth
			cm.Raft, cm.Term, cm.CommitIndex, cm.AppliedIndex = "self", m.Raft.Term, m.Raft.CommitIndex, m.Raft.AppliedIndex
		case m.Reported != nil:
			cm.Raft, cm.Term, cm.CommitIndex, cm.AppliedIndex = "reported", m.Reported.Term, m.Reported.CommitIndex, m.Reported.AppliedIndex
			cm.LastContactSeconds = since(&m.Reported.At)
		}
		c.Members = append(c.Members, cm)
	}
	return c
}

// consoleUsers is the paired users, their pools as the FSM and this
// node's actors (st) see them, and the recorder's windows.
func (n *Node) consoleUsers(st actors.Status) []console.User {
	pools := map[string]actors.PoolStatus{}
	for _, p := range st.Pools {
		pools[p.Key] = p
	}
	depths := n.cluster.PoolDepths()
	out := []console.User{}
	for _, u := range n.Users() {
		l := u.Listing()
		id := userRecordID(u.WorkspaceID, u.ID)
		cu := console.User{
			ID: id, Name: u.Name, Role: u.Role, PublicKey: u.PublicKey, ApprovalKey: u.ApprovalPublicKey,
			Quorum: l.Quorum, Parties: l.Parties, Outcomes: n.recorder.Outcomes(id),
		}
		if u.Signer() {
			p := pools[u.ShareRecord]
			cu.Pool = &console.Pool{Depth: depths[u.ShareRecord], Target: p.Target, Refilling: p.Refilling,
				AddedPerMinute: n.recorder.AddedPerMinute(u.ShareRecord)}
		}
		out = append(out, cu)
	}
	return out
}

// consoleInFlight lists the unfinished requests, the oldest first: those
// the members own and those released and not claimed again. The stage of
// this node's (self's) requests is their Session's step in st.
func consoleInFlight(r cluster.Reader, members []MemberView, self string, st actors.Status, now time.Time) console.InFlight {
	steps := map[string]string{}
	for _, ss := range st.Sessions {
		steps[ss.Request] = ss.Step
	}
	var reqs []cluster.RequestInfo
	for _, m := range members {
		for _, id := range r.OwnedBy(m.ID) {
			if info, ok := r.Request(id); ok {
				reqs = append(reqs, info)
			}
		}
	}
	reqs = append(reqs, r.Unclaimed()...)
	slices.SortStableFunc(reqs, func(a, b cluster.RequestInfo) int { return a.ClaimedAt.Compare(b.ClaimedAt) })
	f := console.InFlight{Total: len(reqs), Requests: []console.Request{}}
	for _, info := range reqs[:min(len(reqs), maxConsoleInFlight)] {
		cr := console.Request{ID: info.ID, User: info.APIUserID, Owner: info.Owner, Attempt: info.Attempt,
			AgeSeconds: max(now.Sub(info.ClaimedAt).Seconds(), 0)}
		switch {
		case info.Status == cluster.StatusUnclaimed:
			cr.Stage = "waiting for a claim"
		case info.Owner == self && steps[info.ID] != "":
			cr.Stage = steps[info.ID]
		case info.Owner == self:
			cr.Stage = "starting"
		default:
			cr.Stage = "claimed"
		}
		f.Requests = append(f.Requests, cr)
	}
	f.More = f.Total - len(f.Requests)
	return f
}
