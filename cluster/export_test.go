package cluster

import "strings"

// RecordLog lets the external tests keep what a node logs (recordLog).
type RecordLog = recordLog

// Count returns how many times s was logged.
func (r *recordLog) Count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Count(r.b.String(), s)
}
