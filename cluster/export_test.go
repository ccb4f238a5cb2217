package cluster

import (
	"strings"
	"testing"
)

// LogWriter lets the external tests keep what a node logs (logWriter).
type LogWriter = logWriter

// NewLogWriter is newLogWriter.
func NewLogWriter(t *testing.T) *LogWriter { return newLogWriter(t) }

// Count returns how many times s was logged.
func (w *logWriter) Count(s string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Count(w.kept.String(), s)
}
