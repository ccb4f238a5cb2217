package check

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Invariant names what a violation breaks.
type Invariant int

// The invariants Check judges, as DESIGN.md numbers them.
const (
	// I1: a presignature is used at most once.
	I1 Invariant = iota + 1
	// I2: one owner per request at a time, one signature per digest.
	I2
	// I3: every accepted request reaches a terminal outcome.
	I3
	// I5: nothing signed or approved without the handler's APPROVE.
	I5
	// I6: a signature's presignature was reserved for its request, by a
	// commit of the request's owner at the time.
	I6
	// InvSignature: every signature verifies under its derived key.
	InvSignature
	// InvLog: the nodes' raft logs agree at every index they both hold,
	// as raft's own safety promises.
	InvLog
	// InvAudit: each node's audit log chain verifies, and the nodes'
	// chains agree at every entry they both retain.
	InvAudit
)

// String returns the invariant's short name.
func (i Invariant) String() string {
	switch i {
	case I1:
		return "I1"
	case I2:
		return "I2"
	case I3:
		return "I3"
	case I5:
		return "I5"
	case I6:
		return "I6"
	case InvSignature:
		return "signature"
	case InvLog:
		return "raft-log"
	case InvAudit:
		return "audit"
	default:
		return fmt.Sprintf("Invariant(%d)", int(i))
	}
}

// Violation is one broken invariant.
type Violation struct {
	Invariant Invariant
	// RequestID is the request concerned; for a presignature used by
	// several requests, each of them gets its own violation. For InvLog,
	// it is "-" when neither differing entry names a request.
	RequestID string
	// Detail says what was seen, and where.
	Detail string
}

// String formats the violation as one line.
func (v Violation) String() string {
	return fmt.Sprintf("%s %s: %s", v.Invariant, v.RequestID, v.Detail)
}

// Report is Check's verdict.
type Report struct {
	// Violations are sorted by invariant, request id and detail.
	Violations []Violation
	// Counts of what was checked, so that an empty run is told from a clean
	// one.
	Requests      int
	Signatures    int
	LedgerUses    int
	Nodes         int
	Presignatures int
	// CallbackRead is false when no handler log was given: I5 was not
	// judged.
	CallbackRead bool
	// LogsRead counts the nodes' raft logs given, LogEntries the distinct
	// indexes they hold. LogJudged counts the signatures I6 judged from
	// the logs; LogNotJudged the signed requests it could not, because the
	// logs start after index 1.
	LogsRead     int
	LogEntries   int
	LogJudged    int
	LogNotJudged int
	// AuditsRead counts the nodes' audit logs given, AuditEntries their
	// entries together.
	AuditsRead   int
	AuditEntries int
}

// OK reports whether no invariant was broken.
func (r Report) OK() bool { return len(r.Violations) == 0 }

// String formats the report: one line of counts, then one line per
// violation.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "checked %d requests, %d signatures, %d ledger uses, %d presignatures on %d nodes", r.Requests, r.Signatures, r.LedgerUses, r.Presignatures, r.Nodes)
	if r.LogsRead > 0 {
		fmt.Fprintf(&b, ", %d raft log entries from %d nodes (%d signatures' reservations judged)", r.LogEntries, r.LogsRead, r.LogJudged)
		if r.LogNotJudged > 0 {
			fmt.Fprintf(&b, " (compacted: %d signed requests not judged from them)", r.LogNotJudged)
		}
	}
	if r.AuditsRead > 0 {
		fmt.Fprintf(&b, ", %d audit log entries from %d nodes", r.AuditEntries, r.AuditsRead)
	}
	if !r.CallbackRead {
		b.WriteString(", no callback handler log (I5 not checked)")
	}
	fmt.Fprintf(&b, ": %d violations\n", len(r.Violations))
	for _, v := range r.Violations {
		b.WriteString(v.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func (r *Report) add(inv Invariant, request, format string, args ...any) {
	r.Violations = append(r.Violations, Violation{Invariant: inv, RequestID: request, Detail: fmt.Sprintf(format, args...)})
}

func (r *Report) sort() {
	slices.SortFunc(r.Violations, func(a, b Violation) int {
		return cmp.Or(cmp.Compare(a.Invariant, b.Invariant), strings.Compare(a.RequestID, b.RequestID), strings.Compare(a.Detail, b.Detail))
	})
	r.Violations = slices.Compact(r.Violations)
}
