package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/cluster/audit"
	"github.com/coterie-mpc/coterie/internal/atomicfile"
)

// The audit log's admin API paths.
const (
	// PathAudit answers the audit log's retained entries (GET), from a
	// sequence number (from=) or a time (since=, RFC 3339), at most limit=
	// of them; with wait= (a duration) it waits that long, bounded, for an
	// entry when there is none yet (follow mode).
	PathAudit = "/v1/audit"
	// PathAuditTruncate drops the entries up to a number, given with that
	// entry's hash (POST), once the caller exported them.
	PathAuditTruncate = "/v1/audit/truncate"
)

// Bounds of the audit API.
const (
	auditPageDefault = 1000
	// auditPageMax keeps an answer under maxAdminAnswer.
	auditPageMax = 2000
	// auditWaitMax bounds a follow request's wait.
	auditWaitMax = 30 * time.Second
	// auditCheckInterval is how often the leader checks the retention.
	auditCheckInterval = 10 * time.Second
	// AuditSegmentDir is where, under the data directory, the leader
	// writes the segments it exports before it truncates the log.
	AuditSegmentDir = "audit"
)

// AuditConfig bounds the audit log the cluster retains.
type AuditConfig struct {
	// RetainEntries is how many entries the cluster keeps in its replicated
	// state. Once there are more, the leader exports the oldest (leaving
	// half of RetainEntries) to a segment file under DataDir/audit, then
	// drops them from the cluster. An entry takes 200 to 600 bytes of
	// memory and snapshot.
	RetainEntries int `yaml:"retain_entries"`
}

// defaultAuditRetain is AuditConfig.RetainEntries by default.
const defaultAuditRetain = 20_000

func (c AuditConfig) validate() []error {
	if c.RetainEntries < 10 || c.RetainEntries > maxAuditRetain {
		return []error{fmt.Errorf("%w: audit.retain_entries %d must be 10 to %d", ErrInvalidConfig, c.RetainEntries, maxAuditRetain)}
	}
	return nil
}

// maxAuditRetain is the most entries a node may ask the cluster to
// retain: below the FSM's own cap, so that the leader's exports, not the
// cap, drop entries.
const maxAuditRetain = 50_000

// AuditListing is the answer of GET /v1/audit: the chain's anchor (the
// entry before the first retained one) and head, and the entries asked for.
type AuditListing struct {
	Anchor   audit.Anchor  `json:"anchor"`
	Head     audit.Anchor  `json:"head"`
	Retained int           `json:"retained"`
	Entries  []audit.Entry `json:"entries"`
}

// AuditQuery selects entries for AdminClient.Audit.
type AuditQuery struct {
	// From is the first sequence number wanted (0: the first retained).
	From uint64
	// Since, when not zero, starts at the first entry stamped at or after
	// it instead of From.
	Since time.Time
	// Limit bounds the entries (0: the server's default).
	Limit int
	// Wait, when positive, waits up to it for an entry from From on.
	Wait time.Duration
}

// AuditTruncateRequest is the body of POST /v1/audit/truncate.
type AuditTruncateRequest struct {
	UpTo uint64       `json:"up_to"`
	Hash audit.Digest `json:"hash"`
}

func (a *adminServer) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := auditPageDefault
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > auditPageMax {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("limit must be 1 to %d", auditPageMax))
			return
		}
		limit = n
	}
	var from uint64
	if s := q.Get("from"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, "from must be an entry number")
			return
		}
		from = n
	}
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, "since must be an RFC 3339 time")
			return
		}
		since = t
	}
	var wait time.Duration
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, codeBadRequest, "wait must be a duration")
			return
		}
		wait = min(d, auditWaitMax)
	}
	c := a.n.cluster
	read := func() cluster.AuditPage {
		if !since.IsZero() {
			return c.AuditSince(since, limit)
		}
		return c.Audit(from, limit)
	}
	page := read()
	if len(page.Entries) == 0 && wait > 0 && since.IsZero() && from > page.Head.Seq {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		err := c.WaitAudit(ctx, from-1)
		cancel()
		if err == nil {
			page = read()
		}
	}
	n, _ := c.AuditRetained()
	out := AuditListing{Anchor: page.Anchor, Head: page.Head, Retained: n, Entries: page.Entries}
	if out.Entries == nil {
		out.Entries = []audit.Entry{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *adminServer) truncateAudit(w http.ResponseWriter, r *http.Request) {
	var req AuditTruncateRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody)).Decode(&req); err != nil || req.UpTo == 0 {
		writeError(w, http.StatusBadRequest, codeBadRequest, "want {\"up_to\": N, \"hash\": HEX}")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), clusterOpTimeout)
	defer cancel()
	if err := a.n.cluster.TruncateAudit(ctx, req.UpTo, req.Hash); err != nil {
		if errors.Is(err, cluster.ErrAudit) {
			writeError(w, http.StatusConflict, codeRefused, err.Error())
			return
		}
		writeError(w, http.StatusServiceUnavailable, codeFailed, err.Error())
		return
	}
	a.n.log.Info("audit log truncated", "up_to", req.UpTo)
	writeJSON(w, http.StatusOK, struct{}{})
}

// Audit reads the node's audit log.
func (c *AdminClient) Audit(ctx context.Context, q AuditQuery) (AuditListing, error) {
	v := url.Values{}
	if q.From != 0 {
		v.Set("from", strconv.FormatUint(q.From, 10))
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Wait > 0 {
		v.Set("wait", q.Wait.String())
	}
	path := PathAudit
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out AuditListing
	return out, c.do(ctx, http.MethodGet, path, nil, true, &out)
}

// TruncateAudit asks the node to drop the audit entries up to upTo, whose
// hash must be hash: the caller exported them first. A refusal wraps
// ErrRefused.
func (c *AdminClient) TruncateAudit(ctx context.Context, upTo uint64, hash audit.Digest) error {
	body, err := json.Marshal(AuditTruncateRequest{UpTo: upTo, Hash: hash})
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, PathAuditTruncate, body, true, nil)
}

// AuditSegmentName is the file name of an exported segment of entries
// first to last.
func AuditSegmentName(first, last uint64) string {
	return fmt.Sprintf("audit-%020d-%020d.jsonl", first, last)
}

// exportAudit runs the retention once, on the leader: when the cluster
// retains more than RetainEntries entries, it writes the oldest, leaving
// half of RetainEntries, to a segment file (atomically, mode 0600), then
// proposes their truncation. It returns the file written, or "".
func (n *Node) exportAudit(ctx context.Context) (string, error) {
	retain := n.cfg.Audit.RetainEntries
	if !n.cluster.IsLeader() {
		return "", nil
	}
	if count, _ := n.cluster.AuditRetained(); count <= retain {
		return "", nil
	}
	all := n.cluster.Audit(0, 0)
	drop := len(all.Entries) - retain/2
	seg := audit.Segment{Anchor: all.Anchor, Entries: all.Entries[:drop]}
	data, err := audit.MarshalSegment(seg)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(n.cfg.DataDir, AuditSegmentDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	head := seg.Head()
	path := filepath.Join(dir, AuditSegmentName(seg.Anchor.Seq+1, head.Seq))
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return "", err
	}
	if err := n.cluster.TruncateAudit(ctx, head.Seq, head.Hash); err != nil {
		// The file stays: it verifies on its own, and the next export
		// (here or on the next leader) writes the same entries again.
		return "", err
	}
	n.log.Info("audit log exported and truncated", "file", path, "first", seg.Anchor.Seq+1, "last", head.Seq)
	return path, nil
}

// auditStep exports and truncates the audit log when it holds more than it
// retains; the leader runs it every auditCheckInterval.
func (n *Node) auditStep(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, clusterOpTimeout)
	_, err := n.exportAudit(cctx)
	cancel()
	if err != nil && ctx.Err() == nil && !errors.Is(err, cluster.ErrNotLeader) {
		n.log.Warn("audit log export failed", "err", err)
	}
}
