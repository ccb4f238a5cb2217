package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/coterie-mpc/coterie/cluster/audit"
	"github.com/coterie-mpc/coterie/internal/atomicfile"
	"github.com/coterie-mpc/coterie/node"
)

// auditPage is how many entries the CLI asks for at a time.
const auditPage = 1000

// auditFollowWait is how long one follow request waits for an entry.
const auditFollowWait = 25 * time.Second

// maxSegmentFileBytes bounds a segment file the CLI reads.
const maxSegmentFileBytes = 1 << 30

func newNodeAuditCmd() *cobra.Command {
	var configPath, since string
	var from uint64
	var files []string
	var follow, asJSON, verify bool
	cmd := &cobra.Command{
		Use:   "audit --config FILE [--follow] [--json] [--since T | --from N] [--verify [--file SEGMENT]...]",
		Short: "Read and verify the cluster's tamper-evident audit log",
		Long: "audit prints the audit log the running node holds: every request claimed, the callback handler's " +
			"decision (action, reason, the id of the key that verified it), each presignature reserved, each outcome " +
			"with its reason, each release, and every member, policy, keyring, pairing and handler change. Entries " +
			"form a hash chain that every node derives from the raft log.\n\n" +
			"--verify checks the chain the node retains, from its anchor (the last entry exported and dropped) to its " +
			"head, and exits non-zero naming the first broken link. With --file it checks exported segments offline, " +
			"in the order given, each linking to the one before, and, with --config, to the node's chain.",
		Example: "  coterie node audit --config node-1.yaml --since 1h\n" +
			"  coterie node audit --config node-1.yaml --follow --json\n" +
			"  coterie node audit --config node-1.yaml --verify\n" +
			"  coterie node audit --verify --file audit-1.jsonl --file audit-2.jsonl --config node-1.yaml",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if verify {
				return runAuditVerify(cmd, configPath, files, asJSON)
			}
			if configPath == "" {
				return errors.New("--config is required")
			}
			q := node.AuditQuery{From: from, Limit: auditPage}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				q.Since = t
			}
			c, err := adminClient(configPath)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if follow {
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
			}
			return printAudit(ctx, out, c, q, follow, asJSON)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the node's YAML config file")
	cmd.Flags().BoolVar(&follow, "follow", false, "keep printing entries as they are recorded, until interrupted")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: one entry per line")
	cmd.Flags().StringVar(&since, "since", "", "start at the first entry stamped at or after T: an RFC 3339 time, or a duration ago (1h)")
	cmd.Flags().Uint64Var(&from, "from", 0, "start at entry N")
	cmd.Flags().BoolVar(&verify, "verify", false, "check the chain and name the first broken link")
	cmd.Flags().StringArrayVar(&files, "file", nil, "with --verify, an exported segment file to check (repeatable, oldest first)")
	cmd.AddCommand(newNodeAuditExportCmd())
	return cmd
}

// parseSince reads an RFC 3339 time, or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time or a duration such as 1h", s)
	}
	return now.Add(-d), nil
}

// printAudit prints the entries q selects, page by page; with follow it
// then waits for new ones until ctx ends.
func printAudit(ctx context.Context, w io.Writer, c *node.AdminClient, q node.AuditQuery, follow, asJSON bool) error {
	for {
		if follow {
			q.Wait = auditFollowWait
		}
		l, err := c.Audit(ctx, q)
		if err != nil {
			if follow && ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, e := range l.Entries {
			if err := printAuditEntry(w, e, asJSON); err != nil {
				return err
			}
		}
		next := l.Head.Seq + 1
		if n := len(l.Entries); n > 0 {
			next = l.Entries[n-1].Seq + 1
		} else if q.From > next {
			next = q.From
		}
		q.From, q.Since = next, time.Time{}
		if !follow && next > l.Head.Seq {
			return nil
		}
	}
}

func printAuditEntry(w io.Writer, e audit.Entry, asJSON bool) error {
	if asJSON {
		return printJSONLine(w, e)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s %s", e.Seq, e.Time.UTC().Format(time.RFC3339Nano), e.Kind)
	for _, kv := range []struct{ k, v string }{
		{"node", e.Node}, {"request", e.Request}, {"user", e.APIUser}, {"subject", e.Subject}, {"key", e.Key},
		{"presignature", e.Presignature}, {"action", e.Action}, {"outcome", e.Outcome}, {"reason", e.Reason},
		{"handler_key", e.HandlerKey}, {"digest", e.Digest}, {"detail", e.Detail},
	} {
		if kv.v != "" {
			fmt.Fprintf(&b, " %s=%q", kv.k, kv.v)
		}
	}
	if e.Number != 0 {
		fmt.Fprintf(&b, " number=%d", e.Number)
	}
	_, err := fmt.Fprintln(w, b.String())
	return err
}

// fetchChain reads every entry the node retains, from its anchor up to
// the head it named first, and that head.
func fetchChain(ctx context.Context, c *node.AdminClient) (audit.Segment, audit.Anchor, error) {
	l, err := c.Audit(ctx, node.AuditQuery{Limit: auditPage})
	if err != nil {
		return audit.Segment{}, audit.Anchor{}, err
	}
	seg := audit.Segment{Anchor: l.Anchor, Entries: l.Entries}
	head := l.Head
	for len(l.Entries) > 0 && seg.Head().Seq < head.Seq {
		next := seg.Head().Seq + 1
		if l, err = c.Audit(ctx, node.AuditQuery{From: next, Limit: auditPage}); err != nil {
			return seg, head, err
		}
		if l.Anchor.Seq >= next {
			return seg, head, errors.New("the audit log was truncated while it was read: run again")
		}
		seg.Entries = append(seg.Entries, l.Entries...)
	}
	// Entries recorded after the first answer are left for the next run.
	for n := len(seg.Entries); n > 0 && seg.Entries[n-1].Seq > head.Seq; n-- {
		seg.Entries = seg.Entries[:n-1]
	}
	seg.Declared = len(seg.Entries)
	return seg, head, nil
}

// auditVerdict is what --verify --json prints.
type auditVerdict struct {
	OK       bool         `json:"ok"`
	Source   string       `json:"source"`
	Anchor   audit.Anchor `json:"anchor"`
	Head     audit.Anchor `json:"head"`
	Entries  int          `json:"entries"`
	BrokenAt uint64       `json:"broken_at,omitempty"`
	Error    string       `json:"error,omitempty"`
}

func runAuditVerify(cmd *cobra.Command, configPath string, files []string, asJSON bool) error {
	out := cmd.OutOrStdout()
	if configPath == "" && len(files) == 0 {
		return errors.New("--verify needs --config (the node's chain) or --file (exported segments)")
	}
	var verdicts []auditVerdict
	var failed error
	check := func(source string, seg audit.Segment, head *audit.Anchor) {
		v := auditVerdict{OK: true, Source: source, Anchor: seg.Anchor, Head: seg.Head(), Entries: len(seg.Entries)}
		err := seg.Verify()
		if err == nil && head != nil {
			err = audit.VerifyHead(seg.Anchor, seg.Entries, *head)
		}
		if err != nil {
			v.OK, v.Error = false, err.Error()
			var bl *audit.BrokenLinkError
			if errors.As(err, &bl) {
				v.BrokenAt = bl.Seq
			}
			if failed == nil {
				failed = fmt.Errorf("%s: %w", source, err)
			}
		}
		verdicts = append(verdicts, v)
	}
	var prev *audit.Anchor
	link := func(source string, a audit.Anchor) {
		if prev != nil && failed == nil && *prev != a {
			failed = fmt.Errorf("%s: %w", source, &audit.BrokenLinkError{Seq: a.Seq + 1,
				Why: fmt.Sprintf("its anchor (%d) is not the previous segment's last entry (%d)", a.Seq, prev.Seq)})
			verdicts[len(verdicts)-1].OK, verdicts[len(verdicts)-1].Error = false, failed.Error()
		}
	}
	for _, path := range files {
		seg, err := readSegmentFile(path)
		if err != nil {
			return err
		}
		check(path, seg, nil)
		link(path, seg.Anchor)
		h := seg.Head()
		prev = &h
	}
	if configPath != "" {
		ctx, c, cancel, err := nodeCall(cmd, configPath, clusterCallTimeout)
		if err != nil {
			return err
		}
		defer cancel()
		seg, head, err := fetchChain(ctx, c)
		if err != nil {
			return err
		}
		check("node", seg, &head)
		if prev != nil && failed == nil {
			linkToNode(prev, seg, &verdicts[len(verdicts)-1], &failed)
		}
	}
	if asJSON {
		if err := printJSON(out, verdicts); err != nil {
			return err
		}
	} else {
		for _, v := range verdicts {
			switch {
			case v.OK && v.Head.Seq == 0:
				// Nothing to check: say so rather than "ok".
				fmt.Fprintf(out, "%s: no entries yet (a node that has not caught up with its cluster holds none)\n", v.Source)
			case v.OK:
				fmt.Fprintf(out, "%s: ok, entries %d to %d (%d), head %s\n", v.Source, v.Anchor.Seq+1, v.Head.Seq, v.Entries, v.Head.Hash)
			default:
				fmt.Fprintf(out, "%s: BROKEN: %s\n", v.Source, v.Error)
			}
		}
	}
	return failed
}

// linkToNode checks that the last segment file reaches the node's chain:
// its last entry is the node's anchor, or an entry the node retains with
// the same hash.
func linkToNode(prev *audit.Anchor, seg audit.Segment, v *auditVerdict, failed *error) {
	a := seg.Anchor
	var err error
	switch {
	case prev.Seq < a.Seq:
		err = &audit.BrokenLinkError{Seq: prev.Seq + 1, Why: fmt.Sprintf("missing: the files end at %d, the node's chain starts after %d", prev.Seq, a.Seq)}
	case prev.Seq == a.Seq && prev.Hash != a.Hash:
		err = &audit.BrokenLinkError{Seq: a.Seq, Why: "the last file's last entry is not the node's anchor"}
	case prev.Seq > a.Seq:
		i := int(prev.Seq - a.Seq - 1)
		if i < len(seg.Entries) && seg.Entries[i].Hash != prev.Hash {
			err = &audit.BrokenLinkError{Seq: prev.Seq, Why: "the last file's last entry differs from the node's"}
		}
	}
	if err != nil {
		*failed = fmt.Errorf("node: %w", err)
		v.OK, v.Error = false, err.Error()
		var bl *audit.BrokenLinkError
		if errors.As(err, &bl) {
			v.BrokenAt = bl.Seq
		}
	}
}

func readSegmentFile(path string) (audit.Segment, error) {
	f, err := os.Open(path)
	if err != nil {
		return audit.Segment{}, err
	}
	defer f.Close()
	seg, err := audit.ReadSegment(io.LimitReader(f, maxSegmentFileBytes))
	if err != nil {
		return seg, fmt.Errorf("%s: %w", path, err)
	}
	return seg, nil
}

func newNodeAuditExportCmd() *cobra.Command {
	var configPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "export --config FILE OUT [--json]",
		Short: "Export the audit entries the cluster retains to OUT (mode 0600), then drop them from the cluster",
		Long: "export reads every entry the node retains, checks the chain, writes it to OUT as a segment file " +
			"(JSON lines after a header that names its anchor), reads the file back and checks it, and only then asks " +
			"the cluster to drop those entries. The cluster keeps the last one's number and hash as its anchor and " +
			"records the truncation in the log, so `audit --verify --file OUT --config FILE` links the file to the " +
			"chain the cluster goes on with. The leader exports by itself past audit.retain_entries.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := nodeCall(cmd, configPath, clusterCallTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			seg, _, err := fetchChain(ctx, c)
			if err != nil {
				return err
			}
			if err := seg.Verify(); err != nil {
				return fmt.Errorf("the node's audit log does not verify, nothing exported: %w", err)
			}
			if len(seg.Entries) == 0 {
				return errors.New("the cluster retains no audit entry to export")
			}
			data, err := audit.MarshalSegment(seg)
			if err != nil {
				return err
			}
			if err := atomicfile.Write(args[0], data, 0o600); err != nil {
				return err
			}
			back, err := readSegmentFile(args[0])
			if err == nil {
				err = back.Verify()
			}
			if err != nil {
				return fmt.Errorf("the exported file does not read back, nothing dropped: %w", err)
			}
			head := seg.Head()
			if err := c.TruncateAudit(ctx, head.Seq, head.Hash); err != nil {
				return fmt.Errorf("exported to %s, but the cluster did not drop the entries: %w", args[0], err)
			}
			res := struct {
				File  string       `json:"file"`
				First uint64       `json:"first"`
				Last  uint64       `json:"last"`
				Head  audit.Anchor `json:"head"`
			}{args[0], seg.Anchor.Seq + 1, head.Seq, head}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "exported entries %d to %d to %s and dropped them from the cluster; last hash %s\n",
				res.First, res.Last, res.File, head.Hash)
			return nil
		},
	}
	configFlag(cmd, &configPath)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
