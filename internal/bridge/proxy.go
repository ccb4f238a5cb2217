package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// maxRequest bounds the CONNECT request a proxy reads.
const maxRequest = 8 << 10

// Config configures Proxy and Forward.
type Config struct {
	// Allow lists the host:port destinations Proxy dials; it refuses any
	// other with 403. Hosts compare without regard to case; there are no
	// wildcards, so that an enclave cannot be sent anywhere else.
	Allow []string
	// MaxConns bounds the connections one listener serves at once; a
	// connection beyond it is closed at once.
	MaxConns int
	// DialTimeout bounds each dial of a destination.
	DialTimeout time.Duration
	// RequestTimeout bounds the reading of a CONNECT request.
	RequestTimeout time.Duration
	// HalfCloseTimeout bounds how long a connection stays open once one
	// side has finished sending.
	HalfCloseTimeout time.Duration
	// Logger receives refusals and failures; never payloads.
	Logger *slog.Logger
}

// DefaultConfig returns a Config that allows no destination, serves 1024
// connections per listener, gives dials and requests ten seconds and a
// half-closed connection a minute.
func DefaultConfig() Config {
	return Config{MaxConns: 1024, DialTimeout: 10 * time.Second, RequestTimeout: 10 * time.Second, HalfCloseTimeout: time.Minute,
		Logger: slog.New(slog.DiscardHandler)}
}

// Validate reports every problem with c at once, or nil.
func (c Config) Validate() error {
	var errs []error
	for _, a := range c.Allow {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("bridge: allowed destination %q is not host:port", a))
		}
	}
	if c.MaxConns <= 0 {
		errs = append(errs, fmt.Errorf("bridge: MaxConns %d is not positive", c.MaxConns))
	}
	if c.DialTimeout <= 0 || c.RequestTimeout <= 0 || c.HalfCloseTimeout <= 0 {
		errs = append(errs, errors.New("bridge: DialTimeout, RequestTimeout and HalfCloseTimeout must be positive"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("bridge: Logger is nil"))
	}
	return errors.Join(errs...)
}

// Proxy serves HTTP CONNECT on ln: for each allowed destination it dials
// it and relays bytes both ways. It returns ctx.Err() when ctx ends, or
// nil when ln is closed, after closing ln and every connection it serves;
// cfg.Validate's error at once.
func Proxy(ctx context.Context, ln net.Listener, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		ln.Close()
		return err
	}
	allow := make(map[string]bool, len(cfg.Allow))
	for _, a := range cfg.Allow {
		allow[strings.ToLower(a)] = true
	}
	busy := func(c net.Conn) { answer(c, http.StatusServiceUnavailable, "") }
	r := newRelay(ln, cfg.MaxConns, cfg.Logger, busy)
	return r.serve(ctx, func(ctx context.Context, c net.Conn) {
		proxyConn(ctx, c, allow, cfg)
	})
}

// proxyConn serves one CONNECT request on c.
func proxyConn(ctx context.Context, c net.Conn, allow map[string]bool, cfg Config) {
	_ = c.SetReadDeadline(time.Now().Add(cfg.RequestTimeout))
	br := bufio.NewReader(io.LimitReader(c, maxRequest))
	req, err := http.ReadRequest(br)
	if err != nil {
		cfg.Logger.Info("bridge: unreadable proxy request", "from", c.RemoteAddr().String(), "err", err)
		answer(c, http.StatusBadRequest, "")
		return
	}
	target := req.RequestURI
	if req.Method != http.MethodConnect {
		answer(c, http.StatusMethodNotAllowed, "")
		return
	}
	if !allow[strings.ToLower(target)] {
		cfg.Logger.Warn("bridge: destination not allowed", "destination", target)
		answer(c, http.StatusForbidden, "")
		return
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	var d net.Dialer
	up, err := d.DialContext(dctx, "tcp", target)
	cancel()
	if err != nil {
		cfg.Logger.Info("bridge: destination unreachable", "destination", target, "err", err)
		refused := ""
		if errors.Is(err, syscall.ECONNREFUSED) {
			refused = "1"
		}
		answer(c, http.StatusBadGateway, refused)
		return
	}
	defer up.Close()
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	// Whatever the client sent after its request is the tunnel's first
	// bytes.
	if n := br.Buffered(); n > 0 {
		early, _ := br.Peek(n)
		if _, err := up.Write(early); err != nil {
			return
		}
	}
	splice(c, up, cfg.HalfCloseTimeout)
}

// answer writes a bodiless HTTP answer, marked as a refusal when refused
// is set.
func answer(c net.Conn, status int, refused string) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	h := ""
	if refused != "" {
		h = refusedHeader + ": " + refused + "\r\n"
	}
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\n%sContent-Length: 0\r\nConnection: close\r\n\r\n", status, http.StatusText(status), h)
}

// Forward relays each connection accepted on ln to a new connection to to,
// as the parent instance does for an enclave's listeners. It returns as
// Proxy does; cfg.Allow does not apply.
func Forward(ctx context.Context, ln net.Listener, to Addr, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		ln.Close()
		return err
	}
	r := newRelay(ln, cfg.MaxConns, cfg.Logger, func(net.Conn) {})
	return r.serve(ctx, func(ctx context.Context, c net.Conn) {
		dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
		up, err := to.Dial(dctx)
		cancel()
		if err != nil {
			cfg.Logger.Info("bridge: forward target unreachable", "listener", ln.Addr().String(), "target", to.String(), "err", err)
			return
		}
		defer up.Close()
		splice(c, up, cfg.HalfCloseTimeout)
	})
}
