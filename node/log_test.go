package node

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogComponents runs a node and checks that every record names exactly
// one component, and that the node's own records name "node": a subsystem's
// logger derived from the node's own used to repeat the attribute
// (component=node component=actors).
func TestLogComponents(t *testing.T) {
	var buf syncBuffer
	cfg := testConfig(t, t.TempDir())
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n := startNode(t, cfg)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for line := range strings.Lines(buf.String()) {
		if c := strings.Count(line, " component="); c != 1 {
			t.Errorf("%d components in %s", c, line)
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "component="); ok {
				seen[v] = true
			}
		}
		if strings.Contains(line, `msg="node opened"`) && !strings.Contains(line, " component=node ") {
			t.Errorf("the node's own record does not name it: %s", line)
		}
	}
	for _, c := range []string{"node", "cluster", "enclave", "store"} {
		if !seen[c] {
			t.Errorf("no record of component %s in\n%s", c, buf.String())
		}
	}
}
