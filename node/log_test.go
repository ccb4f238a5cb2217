package node

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/internal/logthrottle"
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

// TestRepeatedRecordsThrottled checks that the node's logger lets a few
// identical records through and counts the rest: the summary is written
// at the end of the window on the node's clock, or when the node closes.
func TestRepeatedRecordsThrottled(t *testing.T) {
	var buf syncBuffer
	cfg := testConfig(t, t.TempDir())
	fake := clock.NewFake(time.Now())
	cfg.Clock = fake
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	n := startNode(t, cfg)
	const msg = "workspace unreachable"
	flood := func() {
		for range 1000 {
			n.componentLogger("actors").Warn(msg, "user", "u-0001")
		}
	}
	count := func(s string) int { return strings.Count(buf.String(), s) }

	flood()
	burst := logthrottle.DefaultConfig().Burst
	if got := count(`msg="workspace unreachable"`); got != burst {
		t.Fatalf("%d of 1000 identical records passed, want %d", got, burst)
	}
	fake.Advance(logthrottle.DefaultConfig().Interval)
	want := fmt.Sprintf(`msg="%s" component=actors suppressed=%d`, logthrottle.SummaryMessage, 1000-burst)
	if count(want) != 1 {
		t.Fatalf("no summary %s in\n%s", want, buf.String())
	}
	flood()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if count(want) != 2 || count(`msg="workspace unreachable"`) != 2*burst {
		t.Fatalf("after the next window and Close:\n%s", buf.String())
	}
}
