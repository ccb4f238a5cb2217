package logthrottle_test

import (
	"log/slog"
	"os"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/internal/logthrottle"
)

// Example wraps a text handler: of a thousand identical warnings, the
// first two pass and one summary follows when the window ends.
func Example() {
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	text := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	cfg := logthrottle.DefaultConfig()
	cfg.Burst, cfg.Interval, cfg.Clock = 2, time.Minute, fake
	h, err := logthrottle.New(text, cfg)
	if err != nil {
		panic(err)
	}
	log := slog.New(h).With("component", "actors")
	for range 1000 {
		log.Warn("workspace unreachable", "user", "u-0001")
	}
	fake.Advance(time.Minute)
	// Output:
	// level=WARN msg="workspace unreachable" component=actors user=u-0001
	// level=WARN msg="workspace unreachable" component=actors user=u-0001
	// level=WARN msg="suppressed identical records" component=actors suppressed=998 interval=1m0s record="workspace unreachable" user=u-0001
}
