// The Coterie status console: polls the node's /v1/console/state and
// draws it. Text goes in with textContent only, never as HTML.
"use strict";

const statePath = "/v1/console/state";
const svgNS = "http://www.w3.org/2000/svg";
let pollMillis = 1500;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

// fill replaces a table's rows: each row is a list of cells, a cell a
// string or an element; empty says what an empty table means.
function fill(id, rows, empty) {
  const body = document.querySelector("#" + id + " tbody");
  const cols = document.querySelectorAll("#" + id + " thead th").length;
  body.replaceChildren();
  if (rows.length === 0) {
    const td = el("td", empty, "empty");
    td.colSpan = cols;
    const tr = el("tr");
    tr.append(td);
    body.append(tr);
    return;
  }
  for (const row of rows) {
    const tr = el("tr");
    for (const cell of row) {
      tr.append(cell instanceof Node ? cell : el("td", cell));
    }
    body.append(tr);
  }
}

function td(content, cls) {
  const c = el("td", null, cls);
  c.append(content);
  return c;
}

function tag(text, kind) { return el("span", text, "tag " + (kind || "")); }

function duration(s) {
  if (s === undefined || s === null) return "—";
  if (s < 1) return Math.round(s * 1000) + " ms";
  if (s < 90) return s.toFixed(1) + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  return (s / 3600).toFixed(1) + " h";
}

function ago(at, now) { return duration((new Date(now) - new Date(at)) / 1000) + " ago"; }

function short(hex) { return hex ? hex.slice(0, 10) + "…" : "—"; }

function ms(v) {
  if (v >= 1000) return (v / 1000).toFixed(1) + " s";
  return v < 10 ? v.toFixed(2) + " ms" : Math.round(v) + " ms";
}

const healthKinds = { serving: "ok", self: "ok", reachable: "ok", standby: "warn", catching_up: "warn", unknown: "", unreachable: "bad" };

function outcomeKind(o) { return o === "signed" || o === "approved" ? "ok" : o === "ignored" ? "" : "bad"; }

function renderMembers(s) {
  document.getElementById("cluster-id").textContent = s.cluster.id ? "cluster " + s.cluster.id + ", leader " + (s.cluster.leader_id || "unknown") : "";
  fill("members", s.cluster.members.map((m) => {
    const health = m.health || m.liveness;
    const raft = m.raft ? [m.term, m.commit_index, m.applied_index] : ["—", "—", "—"];
    let load = m.requests_owned + " owned";
    if (m.sessions !== undefined) load += ", " + m.sessions + "/" + m.capacity + " sessions";
    let contact = m.unreachable_seconds !== undefined ? "unreachable " + duration(m.unreachable_seconds) :
      m.last_contact_seconds !== undefined ? duration(m.last_contact_seconds) + " ago" : (m.liveness === "self" ? "self" : "—");
    return [td(el("b", m.id)), m.role, td(tag(health, healthKinds[health] || "bad")), m.location || "—", m.enclave,
      ...raft, contact, load];
  }), "no members yet");
  document.getElementById("liveness-note").textContent = s.cluster.liveness_known ? "" :
    "This node follows: only the leader's console tells every member's liveness and raft progress.";
}

function renderUsers(s) {
  fill("users", s.users.map((u) => {
    const keys = el("td", null, "mono");
    keys.append(u.public_key ? "MPC " + short(u.public_key) + " " : "", "approval " + short(u.approval_key));
    const pool = u.pool ? u.pool.depth + " ready / target " + u.pool.target + (u.pool.refilling ? ", refilling" : "") : "—";
    const refill = u.pool ? u.pool.added_per_minute.toFixed(1) + " /min" : "—";
    const outcomes = el("td");
    const names = Object.keys(u.outcomes).sort();
    if (names.length === 0) outcomes.textContent = "none";
    for (const o of names) outcomes.append(tag(o + " " + u.outcomes[o], outcomeKind(o)), " ");
    return [td(el("b", u.name ? u.id + " (" + u.name + ")" : u.id)), u.role, keys,
      u.quorum ? u.quorum + " of " + u.parties : "—", pool, refill, outcomes];
  }), "no paired API user");
}

function renderRequests(s) {
  const f = s.in_flight;
  document.getElementById("inflight-total").textContent = f.total ? "(" + f.total + ")" : "";
  fill("inflight", f.requests.map((r) => [td(el("code", r.id)), r.user, r.owner || "—", r.stage,
    duration(r.age_seconds)]), "nothing in flight");
  document.getElementById("inflight-more").textContent = f.more ? "and " + f.more + " more" : "";
  fill("decisions", s.decisions.map((d) => [ago(d.at, s.time), td(el("code", d.id)), d.user, d.node,
    td(tag(d.outcome, outcomeKind(d.outcome))), td(d.reason || "", "reason")]), "no decision yet");
  fill("failovers", s.failovers.map((f) => {
    const to = Object.keys(f.to || {}).sort().map((n) => n + " (" + f.to[n] + ")").join(", ");
    const waited = f.resumed ? duration(f.mean_wait_seconds) + " / " + duration(f.max_wait_seconds) : "—";
    return [ago(f.at, s.time), f.node, f.moved, (to || "none yet") + (f.resumed < f.moved ? ", " + (f.moved - f.resumed) + " waiting" : ""), waited];
  }), "no failover seen by this node");
}

// plot draws one stage's p50 and p99 over the window as an inline SVG.
function plot(series, l, now) {
  const w = 300, h = 90, left = 46, bottom = 12;
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  // The x axis spans the window, or the points kept when they cover less.
  const end = new Date(now).getTime();
  const first = new Date(series.points[0].at).getTime() - l.step_seconds * 1000;
  const start = Math.max(end - l.window_seconds * 1000, first);
  const top = Math.max(0.01, ...series.points.map((p) => p.p99_ms));
  const x = (t) => left + (w - left) * (new Date(t).getTime() - start) / (end - start);
  const y = (v) => (h - bottom) - (h - bottom - 4) * v / top;
  const line = (x1, y1, x2, y2, cls) => {
    const e = document.createElementNS(svgNS, "line");
    for (const [k, v] of Object.entries({ x1, y1, x2, y2 })) e.setAttribute(k, v);
    e.setAttribute("class", cls);
    svg.append(e);
  };
  const text = (tx, ty, s, anchor) => {
    const e = document.createElementNS(svgNS, "text");
    e.setAttribute("x", tx); e.setAttribute("y", ty);
    e.setAttribute("text-anchor", anchor || "start");
    e.textContent = s;
    svg.append(e);
  };
  line(left, h - bottom, w, h - bottom, "axis");
  line(left, 4, left, h - bottom, "axis");
  text(left - 2, 10, ms(top), "end");
  text(left - 2, h - bottom, "0", "end");
  text(left, h - 1, "-" + duration((end - start) / 1000));
  text(w, h - 1, "now", "end");
  for (const q of ["p50", "p99"]) {
    // A step that recorded nothing breaks the line.
    let pts = [];
    const flush = () => {
      if (pts.length > 0) {
        const e = document.createElementNS(svgNS, pts.length === 1 ? "circle" : "polyline");
        if (pts.length === 1) { e.setAttribute("cx", pts[0][0]); e.setAttribute("cy", pts[0][1]); e.setAttribute("r", 2.5); }
        else e.setAttribute("points", pts.map((p) => p.join(",")).join(" "));
        e.setAttribute("class", q);
        svg.append(e);
      }
      pts = [];
    };
    for (const p of series.points) {
      if (p.count === 0) { flush(); continue; }
      pts.push([x(p.at).toFixed(1), y(p[q + "_ms"]).toFixed(1)]);
    }
    flush();
  }
  return svg;
}

function renderLatency(s) {
  const l = s.latency;
  document.getElementById("latency-window").textContent = "(last " + duration(l.window_seconds) + ", every " + duration(l.step_seconds) + ")";
  const box = document.getElementById("latency");
  box.replaceChildren();
  if (l.stages.length === 0) {
    box.append(el("p", "No stage recorded anything yet.", "muted"));
    return;
  }
  for (const series of l.stages) {
    const recent = series.points.filter((p) => p.count > 0);
    const last = recent[recent.length - 1];
    const n = recent.reduce((a, p) => a + p.count, 0);
    const div = el("div", null, "plot");
    div.dataset.stage = series.stage;
    const h3 = el("h3", series.stage + " ");
    h3.append(el("span", "p50 " + ms(last.p50_ms) + " · p99 " + ms(last.p99_ms) + " · " + n + " in window", "muted"));
    div.append(h3);
    div.append(plot(series, l, s.time));
    box.append(div);
  }
}

function render(s) {
  const health = document.getElementById("health");
  health.textContent = s.health.status;
  health.className = "badge " + (healthKinds[s.health.status] || "bad");
  document.getElementById("health-reason").textContent = s.health.status === "serving" ? "" : s.health.reason;
  renderMembers(s);
  renderUsers(s);
  renderRequests(s);
  renderLatency(s);
  document.getElementById("updated").textContent = "updated " + new Date(s.time).toLocaleTimeString();
  pollMillis = Math.min(Math.max(s.poll_seconds * 1000, 500), 10000);
}

async function poll() {
  try {
    const r = await fetch(statePath, { credentials: "same-origin", cache: "no-store" });
    if (r.status === 401) {
      location.reload(); // the session ended: back to the login form
      return;
    }
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
  } catch (e) {
    document.getElementById("updated").textContent = "cannot reach the node (" + e.message + "); retrying";
  }
  setTimeout(poll, pollMillis);
}

poll();
