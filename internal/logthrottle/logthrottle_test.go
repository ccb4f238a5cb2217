package logthrottle

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
)

// lines is what the wrapped handler wrote, without times.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// take returns the lines written since the last call.
func (l *lines) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSpace(l.buf.String())
	l.buf.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func newTest(t *testing.T, burst, maxRecords int) (*slog.Logger, *Handler, *lines, *clock.Fake) {
	t.Helper()
	out := &lines{}
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := DefaultConfig()
	cfg.Burst, cfg.MaxRecords, cfg.Clock = burst, maxRecords, fake
	h, err := New(slog.NewTextHandler(out, &slog.HandlerOptions{ReplaceAttr: noTime}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return slog.New(h), h, out, fake
}

func TestThrottle(t *testing.T) {
	type step struct {
		log     func(l *slog.Logger)
		times   int
		advance time.Duration
		want    []string
	}
	warn := func(l *slog.Logger) { l.Warn("pool refill failed", "key", "k1", "err", "unavailable") }
	summary := func(n string) string {
		return `level=WARN msg="suppressed identical records" suppressed=` + n +
			` interval=10s record="pool refill failed" key=k1 err=unavailable`
	}
	passed := `level=WARN msg="pool refill failed" key=k1 err=unavailable`
	tests := []struct {
		name  string
		steps []step
	}{
		{"a flood: the burst, then one summary at the window's end", []step{
			{log: warn, times: 12463, want: []string{passed, passed, passed}},
			{advance: 9 * time.Second},
			{advance: time.Second, want: []string{summary("12460")}},
			{log: warn, times: 1, want: []string{passed}},
		}},
		{"within the burst nothing is held back or summarized", []step{
			{log: warn, times: 3, want: []string{passed, passed, passed}},
			{advance: 10 * time.Second},
			{log: warn, times: 3, want: []string{passed, passed, passed}},
		}},
		{"another value, level or message is another record", []step{
			{log: warn, times: 4, want: []string{passed, passed, passed}},
			{log: func(l *slog.Logger) { l.Warn("pool refill failed", "key", "k2", "err", "unavailable") }, times: 1,
				want: []string{`level=WARN msg="pool refill failed" key=k2 err=unavailable`}},
			{log: func(l *slog.Logger) { l.Error("pool refill failed", "key", "k1", "err", "unavailable") }, times: 1,
				want: []string{`level=ERROR msg="pool refill failed" key=k1 err=unavailable`}},
			{log: func(l *slog.Logger) { l.Warn("pool refill stopped", "key", "k1", "err", "unavailable") }, times: 1,
				want: []string{`level=WARN msg="pool refill stopped" key=k1 err=unavailable`}},
			{advance: 10 * time.Second, want: []string{summary("1")}},
		}},
		{"attributes from With count, and the summary carries them", []step{
			{log: func(l *slog.Logger) { l.With("component", "actors").Warn("retry") }, times: 5,
				want: []string{`level=WARN msg=retry component=actors`, `level=WARN msg=retry component=actors`, `level=WARN msg=retry component=actors`}},
			{log: func(l *slog.Logger) { l.With("component", "cluster").Warn("retry") }, times: 1,
				want: []string{`level=WARN msg=retry component=cluster`}},
			{log: func(l *slog.Logger) { l.WithGroup("g").Warn("retry", "a", 1) }, times: 1,
				want: []string{`level=WARN msg=retry g.a=1`}},
			{advance: 10 * time.Second,
				want: []string{`level=WARN msg="suppressed identical records" component=actors suppressed=2 interval=10s record=retry`}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _, out, fake := newTest(t, 3, 100)
			for i, s := range tt.steps {
				for range s.times {
					s.log(l)
				}
				fake.Advance(s.advance)
				if got := out.take(); strings.Join(got, "\n") != strings.Join(s.want, "\n") {
					t.Fatalf("step %d wrote\n%s\nwant\n%s", i, strings.Join(got, "\n"), strings.Join(s.want, "\n"))
				}
			}
			if fake.Pending() != 0 {
				t.Fatalf("%d timers left", fake.Pending())
			}
		})
	}
}

// TestFlush writes the pending summaries at once and leaves no timer.
func TestFlush(t *testing.T) {
	l, h, out, fake := newTest(t, 1, 100)
	for range 3 {
		l.Warn("a")
	}
	fake.Advance(time.Second)
	for range 2 {
		l.Info("b")
	}
	out.take()
	h.Flush()
	want := []string{
		`level=WARN msg="suppressed identical records" suppressed=2 interval=10s record=a`,
		`level=INFO msg="suppressed identical records" suppressed=1 interval=10s record=b`,
	}
	if got := out.take(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Flush wrote\n%s", strings.Join(got, "\n"))
	}
	if fake.Pending() != 0 {
		t.Fatalf("%d timers left after Flush", fake.Pending())
	}
	fake.Advance(time.Minute)
	if got := out.take(); len(got) != 0 {
		t.Fatalf("a flushed window summarized again: %q", got)
	}
}

// TestMaxRecords passes new kinds of record unthrottled while it remembers
// as many as it may, and remembers again once windows end.
func TestMaxRecords(t *testing.T) {
	l, _, out, fake := newTest(t, 1, 2)
	l.Info("a")
	l.Info("b")
	for range 3 {
		l.Info("c") // not remembered: every one passes
	}
	if got := out.take(); len(got) != 5 {
		t.Fatalf("wrote %d lines, want 5: %q", len(got), got)
	}
	fake.Advance(10 * time.Second)
	for range 3 {
		l.Info("c")
	}
	if got := out.take(); len(got) != 1 {
		t.Fatalf("after the windows ended, wrote %d lines, want 1: %q", len(got), got)
	}
}

// TestConcurrent logs from many goroutines: exactly the burst passes.
func TestConcurrent(t *testing.T) {
	l, _, out, fake := newTest(t, 5, 100)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				l.Warn("same")
			}
		})
	}
	wg.Wait()
	fake.Advance(10 * time.Second)
	got := out.take()
	if len(got) != 6 || got[5] != `level=WARN msg="suppressed identical records" suppressed=795 interval=10s record=same` {
		t.Fatalf("wrote %q", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		want []string
	}{
		{"default", func(*Config) {}, nil},
		{"all wrong", func(c *Config) { *c = Config{Interval: -time.Second} }, []string{"Burst 0", "Interval -1s", "MaxRecords 0", "Clock is nil"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v is not ErrInvalidConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
			if _, err := New(slog.DiscardHandler, c); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New = %v", err)
			}
		})
	}
}

// TestEnabled follows the wrapped handler's level.
func TestEnabled(t *testing.T) {
	h, err := New(slog.NewTextHandler(&lines{}, &slog.HandlerOptions{Level: slog.LevelWarn}), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelWarn) {
		t.Fatal("Enabled does not follow the wrapped handler")
	}
}
