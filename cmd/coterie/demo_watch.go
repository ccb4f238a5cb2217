package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/coterie-mpc/coterie/bench/launch"
	"github.com/coterie-mpc/coterie/node"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/store"
)

const (
	// demoDeadline bounds the watch, from the submission to the last
	// request's end.
	demoDeadline = 150 * time.Second
	// demoKillBy is when, after the submission, the demo kills a node
	// even if the cluster has not finished a request and owned the rest.
	demoKillBy = 60 * time.Second
	// demoTick is how often the watch looks at the workspace and the
	// nodes, and failoverTick how often while the killed node's requests
	// are taken over. A Session seen on a surviving node carries the time
	// it entered its current step, so a shorter tick sees more of them at
	// their first step, the takeover itself, and fewer finish unseen.
	demoTick     = 100 * time.Millisecond
	failoverTick = 25 * time.Millisecond
)

// watchPhase is where the demo's watch of the cluster is.
type watchPhase int

const (
	// phaseSigning: waiting for the cluster to finish a request and own
	// the others, to kill a node.
	phaseSigning watchPhase = iota
	// phaseFailover: the node is dead; waiting for the others to take
	// over every request it owned.
	phaseFailover
	// phaseCatchUp: the node restarted; waiting for it to serve and
	// catch up with the leader.
	phaseCatchUp
	// phaseFinishing: waiting for the rest of the requests.
	phaseFinishing
)

func (p watchPhase) String() string {
	switch p {
	case phaseSigning:
		return "waiting for the cluster to own every request"
	case phaseFailover:
		return "waiting for the killed node's requests to be taken over"
	case phaseCatchUp:
		return "waiting for the restarted node to catch up"
	case phaseFinishing:
		return "waiting for the last requests"
	default:
		return fmt.Sprintf("phase(%d)", int(p))
	}
}

// demoWatch follows the submitted requests to their end while it kills a
// node, follows that node's requests to the others, restarts it and
// follows its catch-up, all shown as progress lines.
type demoWatch struct {
	env   *demoEnv
	ids   []string
	want  map[string]bool
	label map[string]string
	out   io.Writer
	start time.Time
	tty   bool
	last  string

	phase     watchPhase
	submitted time.Time
	fo        *failover
	victim    *demoNode

	restartedAt time.Time
	lastHealth  string
	servingAt   time.Time
	// target is the leader's applied index, on targetLeader, when the
	// restarted node first served.
	target       uint64
	targetLeader string
}

func newDemoWatch(env *demoEnv, plan []demoItem, ids []string, out io.Writer, start time.Time) *demoWatch {
	w := &demoWatch{env: env, ids: ids, want: map[string]bool{}, label: map[string]string{}, out: out, start: start,
		tty: isTerminal(out), submitted: time.Now()}
	for i, id := range ids {
		w.want[id] = true
		w.label[id] = plan[i].label
	}
	return w
}

// event prints one progress line; on a terminal it first clears the
// counting line, which the next look prints again.
func (w *demoWatch) event(format string, args ...any) {
	if w.tty {
		fmt.Fprint(w.out, "\r\033[K")
		w.last = ""
	}
	fmt.Fprintf(w.out, "[%5.1fs] %s\n", time.Since(w.start).Seconds(), fmt.Sprintf(format, args...))
}

// complete reports whether the watch saw everything through: the kill,
// the takeovers, the restart and catch-up, and every request's end.
func (w *demoWatch) complete() bool { return w.phase == phaseFinishing }

// run watches until every request has ended and the killed node has
// caught up, or demoDeadline passes. It returns the requests' last states;
// an error means the demo cannot go on (Ctrl-C, a node that fails).
func (w *demoWatch) run(ctx context.Context) (map[string]*protocol.WsRequest, error) {
	deadline := w.submitted.Add(demoDeadline)
	for {
		final, err := w.requests(ctx)
		if err != nil {
			return nil, err
		}
		statuses := w.statuses(ctx)
		if err := w.advance(ctx, final, statuses); err != nil {
			return nil, err
		}
		if w.fo != nil {
			for _, id := range w.ids {
				if r := final[id]; r != nil {
					w.events(w.fo.sawRequest(r, w.record(ctx)))
				}
			}
		}
		done := w.progress(final, statuses)
		if done && w.complete() {
			return final, nil
		}
		if time.Now().After(deadline) {
			if w.tty {
				fmt.Fprintln(w.out)
			}
			w.event("gave up after %s, %s", demoDeadline, w.phase)
			return final, nil
		}
		tick := demoTick
		if w.phase == phaseFailover {
			tick = failoverTick
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(tick):
		}
	}
}

func (w *demoWatch) events(lines []string) {
	for _, l := range lines {
		w.event("%s", l)
	}
}

// requests returns the submitted requests' states in the workspace.
func (w *demoWatch) requests(ctx context.Context) (map[string]*protocol.WsRequest, error) {
	reqs, err := w.env.listRequests(ctx)
	if err != nil {
		return nil, err
	}
	final := map[string]*protocol.WsRequest{}
	for _, r := range reqs {
		if w.want[r.GetId()] {
			final[r.GetId()] = r
		}
	}
	return final, nil
}

// statuses returns the status of every running node that answers.
func (w *demoWatch) statuses(ctx context.Context) map[string]nodeStatus {
	m := map[string]nodeStatus{}
	for _, n := range w.env.cluster.nodes {
		if !n.running() {
			continue
		}
		if st, err := n.status(ctx); err == nil {
			m[n.id] = st
		}
	}
	return m
}

// advance moves the demo on: the kill, the takeovers, the restart, the
// catch-up.
func (w *demoWatch) advance(ctx context.Context, final map[string]*protocol.WsRequest, statuses map[string]nodeStatus) error {
	switch w.phase {
	case phaseSigning:
		// Kill once the cluster has finished a request and owns every
		// other one, as raft records it: the owners' requests wait for
		// presignatures, the callback handler or the signing round.
		done, owned := 0, 0
		for _, r := range final {
			if store.Terminal(r.GetState()) {
				done++
			}
		}
		for _, st := range statuses {
			owned += st.Requests
		}
		if (done > 0 && owned >= len(w.ids)-done) || time.Since(w.submitted) > demoKillBy {
			return w.kill(ctx, final, statuses)
		}
	case phaseFailover:
		w.watchTakeovers(statuses)
		if w.fo.resolved() && (w.fo.owned == 0 || !w.fo.releasedAt.IsZero()) {
			w.reportFailover()
			if err := w.victim.start(w.env.cluster.exe); err != nil {
				return err
			}
			w.restartedAt = time.Now()
			w.phase = phaseCatchUp
			w.event("restarting %s: coterie node run --config %s", w.victim.id, w.victim.confPath)
		}
	case phaseCatchUp:
		return w.watchCatchUp(ctx, statuses)
	}
	return nil
}

// kill picks the node that owns the most unfinished requests and kills it
// with SIGKILL, unless the requests it owned are finishing at that very
// moment: then it leaves the choice to the next look.
func (w *demoWatch) kill(ctx context.Context, final map[string]*protocol.WsRequest, statuses map[string]nodeStatus) error {
	var sts []nodeStatus
	var desc []string
	for _, n := range w.env.cluster.nodes {
		if st, ok := statuses[n.id]; ok {
			sts = append(sts, st)
			desc = append(desc, fmt.Sprintf("%s (%s) %d", n.id, role(st), st.Requests))
		}
	}
	id := chooseVictim(sts)
	if id == "" {
		return fmt.Errorf("no node answers its status")
	}
	v := w.env.cluster.node(id)
	// The freshest view of what it works on, just before the kill.
	st, err := v.status(ctx)
	if err != nil {
		st = statuses[id]
	}
	var tracked []string
	for _, s := range st.Sessions {
		if w.want[s.Request] && !store.Terminal(final[s.Request].GetState()) {
			tracked = append(tracked, s.Request)
		}
	}
	if len(tracked) == 0 && st.Requests > 0 && time.Since(w.submitted) < demoKillBy {
		return nil // its last requests are finishing: choose again at the next look
	}
	killedAt := time.Now()
	v.kill()
	w.victim, w.phase = v, phaseFailover
	w.event("unfinished requests each node owned, as raft records them: %s", strings.Join(desc, ", "))
	w.fo = newFailover(id, killedAt, st.Requests, tracked)
	article := "a"
	if isLeader(st) {
		article = "the"
	}
	w.event("killed %s (%s %s) with SIGKILL; raft says it owned %d unfinished requests", id, article, role(st), st.Requests)
	for _, r := range tracked {
		w.event("  %s was working on %s (%s)", id, r, w.label[r])
	}
	if len(tracked) == 0 {
		w.event("  it was working on none: nothing to take over")
	}
	return nil
}

// watchTakeovers shows the killed node's requests on the surviving nodes.
func (w *demoWatch) watchTakeovers(statuses map[string]nodeStatus) {
	for _, n := range w.env.cluster.nodes {
		st, ok := statuses[n.id]
		if !ok || n == w.victim {
			continue
		}
		w.events(w.fo.sawSessions(n.id, st.Sessions))
		if st.Raft.LeaderID == "" {
			continue
		}
		for _, m := range st.Cluster.Members {
			if m.ID == w.victim.id {
				w.events(w.fo.sawOwned(m.Load.RequestsOwned, st.Raft.LeaderID, time.Now()))
			}
		}
	}
}

func (w *demoWatch) reportFailover() {
	d := w.fo.times()
	longest, median, ok := failoverFigures(d)
	if !ok {
		w.event("none of %s's requests needed taking over", w.victim.id)
		return
	}
	w.event("failover: the other nodes took over %d of %s's requests, the last %.2f s after the kill (median %.2f s)",
		len(d), w.victim.id, longest.Seconds(), median.Seconds())
}

// record returns a lookup of raft's record of a request on a surviving
// node, for sawRequest.
func (w *demoWatch) record(ctx context.Context) func(string) (node.RequestListing, bool) {
	return func(id string) (node.RequestListing, bool) {
		for _, n := range w.env.cluster.nodes {
			if n == w.victim || n.admin == nil {
				continue
			}
			c, cancel := context.WithTimeout(ctx, demoCallTimeout)
			l, err := n.admin.Request(c, id)
			cancel()
			if err == nil {
				return l, true
			}
		}
		return node.RequestListing{}, false
	}
}

// watchCatchUp shows the restarted node's health until it serves, then
// waits for its applied index to reach the leader's.
func (w *demoWatch) watchCatchUp(ctx context.Context, statuses map[string]nodeStatus) error {
	v := w.victim
	if !v.running() {
		return v.exitErr()
	}
	if time.Since(w.restartedAt) > demoNodeStart {
		return fmt.Errorf("%s did not catch up within %s of its restart; the end of %s:\n%s", v.id, demoNodeStart, v.logPath, launch.Tail(v.logPath, 15))
	}
	after := func() string { return fmt.Sprintf("%.1f s after the restart", time.Since(w.restartedAt).Seconds()) }
	if w.servingAt.IsZero() {
		code, h, err := v.health(ctx)
		desc := "not answering yet"
		if err == nil {
			desc = fmt.Sprintf("%d %s", code, h.Status)
		}
		if desc != w.lastHealth {
			w.lastHealth = desc
			w.event("%s health: %s (%s)", v.id, desc, after())
		}
		if err != nil || code != node.HealthServing {
			return nil
		}
		leader, ok := statuses[h.LeaderID]
		if !ok {
			return nil // ask the leader again at the next look
		}
		w.servingAt, w.target, w.targetLeader = time.Now(), leader.Raft.AppliedIndex, h.LeaderID
		w.event("%s serving again; the leader (%s) has applied raft index %d", v.id, h.LeaderID, w.target)
	}
	st, ok := statuses[v.id]
	if !ok || st.Raft.AppliedIndex < w.target {
		return nil
	}
	w.phase = phaseFinishing
	w.event("%s caught up: applied index %d reached the leader's %d (%s), %s", v.id, st.Raft.AppliedIndex, w.target, w.targetLeader, after())
	return nil
}

// progress prints the counts of the requests' states when they change (on
// a terminal, as one line rewritten in place), and reports whether every
// request has ended.
func (w *demoWatch) progress(final map[string]*protocol.WsRequest, statuses map[string]nodeStatus) bool {
	counts := map[protocol.WsRequestState]int{}
	done := 0
	for _, r := range final {
		counts[r.GetState()]++
		if store.Terminal(r.GetState()) {
			done++
		}
	}
	// The pool is cluster-wide: any serving replica shows it.
	depth := "?"
	for _, n := range w.env.cluster.nodes {
		if st, ok := statuses[n.id]; ok && st.Health.Status == "serving" {
			sum := 0
			for _, d := range st.PoolDepths {
				sum += d
			}
			depth = fmt.Sprint(sum)
			break
		}
	}
	line := fmt.Sprintf("%d/%d done: %d signed, %d approved, %d rejected, %d failed; presignatures ready %s",
		done, len(w.ids),
		counts[protocol.WsRequestState_WS_REQUEST_STATE_SIGNED], counts[protocol.WsRequestState_WS_REQUEST_STATE_APPROVED],
		counts[protocol.WsRequestState_WS_REQUEST_STATE_REJECTED],
		counts[protocol.WsRequestState_WS_REQUEST_STATE_FAILED]+counts[protocol.WsRequestState_WS_REQUEST_STATE_EXPIRED], depth)
	finished := done == len(w.ids)
	stamp := fmt.Sprintf("[%5.1fs] ", time.Since(w.start).Seconds())
	switch {
	case w.tty:
		fmt.Fprintf(w.out, "\r\033[K%s%s", stamp, line)
		if finished && w.complete() {
			fmt.Fprintln(w.out)
		}
	case line != w.last:
		fmt.Fprintln(w.out, stamp+line)
	}
	w.last = line
	return finished
}
