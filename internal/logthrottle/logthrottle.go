package logthrottle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coterie-mpc/coterie/clock"
)

// SummaryMessage is the message of the summary record that replaces the
// records held back in one window.
const SummaryMessage = "suppressed identical records"

// ErrInvalidConfig is returned by Config.Validate and New for a config
// they cannot use; each problem wraps it.
var ErrInvalidConfig = errors.New("logthrottle: invalid config")

// Config configures a Handler. Start from DefaultConfig.
type Config struct {
	// Burst is how many identical records pass per window.
	Burst int
	// Interval is the window, which starts at the first of a kind of
	// record.
	Interval time.Duration
	// MaxRecords bounds how many kinds of record are remembered at once.
	MaxRecords int
	// Clock tells the time and ends windows.
	Clock clock.Clock
}

// DefaultConfig returns 5 identical records per 10 seconds, at most 4096
// kinds remembered, on the system clock.
func DefaultConfig() Config {
	return Config{Burst: 5, Interval: 10 * time.Second, MaxRecords: 4096, Clock: clock.Real()}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Burst < 1 {
		errs = append(errs, fmt.Errorf("%w: Burst %d is not positive", ErrInvalidConfig, c.Burst))
	}
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("%w: Interval %v is not positive", ErrInvalidConfig, c.Interval))
	}
	if c.MaxRecords < 1 {
		errs = append(errs, fmt.Errorf("%w: MaxRecords %d is not positive", ErrInvalidConfig, c.MaxRecords))
	}
	if c.Clock == nil {
		errs = append(errs, fmt.Errorf("%w: Clock is nil", ErrInvalidConfig))
	}
	return errors.Join(errs...)
}

// Handler throttles identical records on their way to another handler.
type Handler struct {
	next   slog.Handler
	prefix string // the attributes and groups of WithAttrs and WithGroup
	st     *state
}

var _ slog.Handler = (*Handler)(nil)

// state is what a Handler and the handlers derived from it share.
type state struct {
	cfg     Config
	mu      sync.Mutex
	windows map[string]*window
	// noSweepBefore is when the first remembered window ends: a sweep
	// before then would free nothing.
	noSweepBefore time.Time
}

// window counts one kind of record from its first occurrence until
// Interval later.
type window struct {
	start time.Time
	seen  int
	// held is the first record held back, for the summary; its handler
	// writes the summary, with the same attributes.
	held  *slog.Record
	via   slog.Handler
	timer clock.Timer
}

// New returns a Handler that passes records to next.
func New(next slog.Handler, cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Handler{next: next, st: &state{cfg: cfg, windows: map[string]*window{}}}, nil
}

// Enabled reports whether next handles records at level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// WithAttrs returns a Handler whose records carry attrs, sharing h's
// state: a record is identical to another only with the same attributes.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range attrs {
		writeAttr(&b, a)
	}
	return &Handler{next: h.next.WithAttrs(attrs), prefix: b.String(), st: h.st}
}

// WithGroup returns a Handler that puts later attributes in group name,
// sharing h's state.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), prefix: h.prefix + "\x01group " + name + "\x00", st: h.st}
}

// Handle passes r to next, unless Burst identical records already passed
// in the current window.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if !h.admit(h.key(r), r) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// admit counts r and reports whether it passes. The first record held
// back in a window sets the timer that writes the window's summary.
func (h *Handler) admit(key string, r slog.Record) bool {
	st := h.st
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.cfg.Clock.Now()
	w, ok := st.windows[key]
	if ok && w.held == nil && !now.Before(w.start.Add(st.cfg.Interval)) {
		// A window that held nothing back ends quietly.
		delete(st.windows, key)
		ok = false
	}
	if !ok {
		if len(st.windows) >= st.cfg.MaxRecords {
			st.sweepLocked(now)
			if len(st.windows) >= st.cfg.MaxRecords {
				return true
			}
		}
		w = &window{start: now}
		st.windows[key] = w
	}
	w.seen++
	if w.seen <= st.cfg.Burst {
		return true
	}
	if w.held == nil {
		held := r.Clone()
		w.held, w.via = &held, h.next
		w.timer = st.cfg.Clock.AfterFunc(w.start.Add(st.cfg.Interval).Sub(now), func() { st.end(key, w) })
	}
	return false
}

// sweepLocked forgets the windows that have ended without holding back
// anything; those that did end on their timers.
func (st *state) sweepLocked(now time.Time) {
	if now.Before(st.noSweepBefore) {
		return
	}
	next := now.Add(st.cfg.Interval)
	for k, w := range st.windows {
		end := w.start.Add(st.cfg.Interval)
		switch {
		case w.held == nil && !now.Before(end):
			delete(st.windows, k)
		case end.Before(next):
			next = end
		}
	}
	st.noSweepBefore = next
}

// end closes w, if it is still the window of key, and writes its summary.
func (st *state) end(key string, w *window) {
	st.mu.Lock()
	if st.windows[key] != w {
		st.mu.Unlock()
		return
	}
	delete(st.windows, key)
	st.mu.Unlock()
	st.summarize(w)
}

// summarize writes the summary of a window that held records back.
func (st *state) summarize(w *window) {
	r := slog.NewRecord(st.cfg.Clock.Now(), w.held.Level, SummaryMessage, 0)
	r.AddAttrs(slog.Int("suppressed", w.seen-st.cfg.Burst), slog.Duration("interval", st.cfg.Interval),
		slog.String("record", w.held.Message))
	w.held.Attrs(func(a slog.Attr) bool {
		r.AddAttrs(a)
		return true
	})
	// A summary that cannot be written has nowhere to report it either.
	_ = w.via.Handle(context.Background(), r)
}

// Flush ends every window that held records back and writes its summary
// now: call it before closing what the handler writes to. Later records
// start new windows.
func (h *Handler) Flush() {
	st := h.st
	st.mu.Lock()
	var pending []*window
	for k, w := range st.windows {
		if w.held != nil {
			w.timer.Stop()
			pending = append(pending, w)
		}
		delete(st.windows, k)
	}
	st.mu.Unlock()
	sort.Slice(pending, func(i, j int) bool { return pending[i].start.Before(pending[j].start) })
	for _, w := range pending {
		st.summarize(w)
	}
}

// key identifies a record by level, message and attributes, not time.
func (h *Handler) key(r slog.Record) string {
	var b strings.Builder
	b.WriteString(r.Level.String())
	b.WriteByte(0)
	b.WriteString(r.Message)
	b.WriteByte(0)
	b.WriteString(h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, a)
		return true
	})
	return b.String()
}

func writeAttr(b *strings.Builder, a slog.Attr) {
	b.WriteString(a.Key)
	b.WriteByte('=')
	b.WriteString(a.Value.Resolve().String())
	b.WriteByte(0)
}
