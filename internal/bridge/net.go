package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"syscall"
	"time"
)

// refusedHeader is the proxy's mark on a 502 answer when the destination
// refused the connection. Dialers turn it back into ECONNREFUSED, which
// the cluster transport reads as "that node is not running".
const refusedHeader = "Coterie-Refused"

// ErrEgress is returned when the egress proxy itself cannot be reached or
// answers nonsense. Its cause is not wrapped: a refused connection to the
// proxy must not read as the destination's refusal.
var ErrEgress = errors.New("bridge: the egress proxy failed")

// exchangeTimeout bounds the CONNECT exchange when the caller's context
// has no deadline.
const exchangeTimeout = 30 * time.Second

// Net is how a node listens and dials. It listens on any kind of Addr; it
// dials host:port destinations directly, or through the CONNECT proxy at
// Egress when that is set. The zero Net is plain TCP. Net is safe for
// concurrent use.
type Net struct {
	// Egress is the CONNECT proxy every dial goes through; nil dials
	// directly.
	Egress *Addr
}

// Listen listens on addr, in any form ParseAddr reads.
func (n Net) Listen(addr string) (net.Listener, error) {
	a, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	return a.Listen()
}

// DialContext connects to addr, a host:port, over network "tcp", "tcp4"
// or "tcp6" (the proxy chooses the family). When the destination refuses
// the connection, the error wraps syscall.ECONNREFUSED, directly or
// through the proxy; when the proxy itself fails, it is ErrEgress, never
// ECONNREFUSED.
func (n Net) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if n.Egress == nil {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("bridge: cannot dial network %q through the egress proxy", network)
	}
	return dialConnect(ctx, *n.Egress, addr)
}

// dialConnect opens a tunnel to target through the CONNECT proxy at proxy.
func dialConnect(ctx context.Context, proxy Addr, target string) (net.Conn, error) {
	c, err := proxy.Dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrEgress, proxy, err)
	}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(exchangeTimeout)
	}
	_ = c.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (net.Conn, error) {
		stop()
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	// A proxy at its connection bound answers 503 and closes before it
	// reads: a failed write still leaves its answer to read.
	_, werr := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	// The answer's header is bounded: the parent must not fill the
	// enclave's memory.
	lim := &io.LimitedReader{R: c, N: maxRequest}
	br := bufio.NewReader(lim)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	switch {
	case err != nil && werr != nil:
		return fail(fmt.Errorf("%w: %s: %v", ErrEgress, proxy, werr))
	case err != nil:
		return fail(fmt.Errorf("%w: %s: reading its answer for %s: %v", ErrEgress, proxy, target, err))
	case werr != nil && resp.StatusCode == http.StatusOK:
		return fail(fmt.Errorf("%w: %s: %v", ErrEgress, proxy, werr))
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.Header.Get(refusedHeader) != "":
		return fail(fmt.Errorf("bridge: %s refused the connection (through %s): %w", target, proxy, syscall.ECONNREFUSED))
	default:
		return fail(fmt.Errorf("bridge: egress proxy %s answered %q for %s", proxy, resp.Status, target))
	}
	// The tunnel itself is not bounded: read past the header from c.
	lim.N = math.MaxInt64
	if !stop() {
		c.Close()
		return nil, ctx.Err()
	}
	_ = c.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// bufferedConn is a connection whose first bytes were read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
