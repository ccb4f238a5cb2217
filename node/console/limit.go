package console

import (
	"sync"
	"time"

	"github.com/coterie-mpc/coterie/clock"
)

// LimitConfig bounds wrong admin tokens: each remote address, and all of
// them together, may try Burst wrong tokens at once and then one more per
// Every. While either is spent, every try is refused (429) unchecked,
// the right token included.
type LimitConfig struct {
	Burst       int
	Every       time.Duration
	GlobalBurst int
	GlobalEvery time.Duration
	// MaxAddresses bounds the remote addresses remembered; past it, a new
	// address meets the global limit alone.
	MaxAddresses int
}

// DefaultLimitConfig returns 5 wrong tokens per address at once, then one
// per 12 seconds; 30 in all at once, then one per 2 seconds.
func DefaultLimitConfig() LimitConfig {
	return LimitConfig{Burst: 5, Every: 12 * time.Second, GlobalBurst: 30, GlobalEvery: 2 * time.Second, MaxAddresses: 4096}
}

// limiter counts wrong tokens in token buckets, per remote address and
// overall, on an injected clock. It is safe for concurrent use.
type limiter struct {
	cfg   LimitConfig
	clock clock.Clock

	mu     sync.Mutex
	global tokenBucket
	byAddr map[string]*tokenBucket
}

// tokenBucket holds the wrong tries left, refilled one per every up to
// burst, as of at.
type tokenBucket struct {
	left float64
	at   time.Time
}

func newLimiter(cfg LimitConfig, c clock.Clock) *limiter {
	return &limiter{cfg: cfg, clock: c, global: tokenBucket{left: float64(cfg.GlobalBurst), at: c.Now()},
		byAddr: map[string]*tokenBucket{}}
}

// refill brings b up to now.
func (b *tokenBucket) refill(now time.Time, burst int, every time.Duration) {
	if d := now.Sub(b.at); d > 0 {
		b.left = min(float64(burst), b.left+float64(d)/float64(every))
		b.at = now
	}
}

// wait returns how long until b allows one more try, 0 if it does now.
func (b *tokenBucket) wait(every time.Duration) time.Duration {
	if b.left >= 1 {
		return 0
	}
	return time.Duration((1 - b.left) * float64(every))
}

// allow reports how long addr must wait before a try: 0 when it may try
// now.
func (l *limiter) allow(addr string) time.Duration {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.global.refill(now, l.cfg.GlobalBurst, l.cfg.GlobalEvery)
	w := l.global.wait(l.cfg.GlobalEvery)
	if b, ok := l.byAddr[addr]; ok {
		b.refill(now, l.cfg.Burst, l.cfg.Every)
		w = max(w, b.wait(l.cfg.Every))
	}
	return w
}

// fail counts a wrong token from addr.
func (l *limiter) fail(addr string) {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.global.refill(now, l.cfg.GlobalBurst, l.cfg.GlobalEvery)
	l.global.left = max(l.global.left-1, 0)
	b, ok := l.byAddr[addr]
	if !ok {
		if len(l.byAddr) >= l.cfg.MaxAddresses {
			l.prune(now)
		}
		if len(l.byAddr) >= l.cfg.MaxAddresses {
			return
		}
		b = &tokenBucket{left: float64(l.cfg.Burst), at: now}
		l.byAddr[addr] = b
	}
	b.refill(now, l.cfg.Burst, l.cfg.Every)
	b.left = max(b.left-1, 0)
}

// prune forgets the addresses whose buckets are full again: they are
// as good as new.
func (l *limiter) prune(now time.Time) {
	for addr, b := range l.byAddr {
		if b.refill(now, l.cfg.Burst, l.cfg.Every); b.left >= float64(l.cfg.Burst) {
			delete(l.byAddr, addr)
		}
	}
}
