package bridge

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// acceptBackoff is the pause after a failed Accept, so a listener that
// keeps failing (out of descriptors) does not spin.
const acceptBackoff = 50 * time.Millisecond

// relay accepts connections on one listener and hands each to a handler,
// at most max at a time; Close, or the end of serve's context, stops it
// and closes every connection it holds.
type relay struct {
	ln     net.Listener
	sem    chan struct{}
	log    *slog.Logger
	onBusy func(net.Conn) // tells a connection over the bound why it closes

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

func newRelay(ln net.Listener, max int, log *slog.Logger, onBusy func(net.Conn)) *relay {
	return &relay{ln: ln, sem: make(chan struct{}, max), log: log, onBusy: onBusy, conns: map[net.Conn]struct{}{}}
}

// serve runs handle for each accepted connection until ctx ends or the
// listener fails for good; it returns once every handler has.
func (r *relay) serve(ctx context.Context, handle func(context.Context, net.Conn)) error {
	stop := context.AfterFunc(ctx, r.close)
	defer stop()
	defer r.wg.Wait()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				r.close()
				return ctx.Err()
			}
			r.log.Warn("bridge: accept failed", "listener", r.ln.Addr().String(), "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(acceptBackoff):
			}
			continue
		}
		select {
		case r.sem <- struct{}{}:
		default:
			r.log.Warn("bridge: connection bound reached; closing a new connection", "listener", r.ln.Addr().String(), "max", cap(r.sem))
			r.onBusy(c)
			c.Close()
			continue
		}
		if !r.track(c) {
			<-r.sem
			return ctx.Err()
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer r.untrack(c)
			defer func() { <-r.sem }() // the slot is free before c closes
			handle(ctx, c)
		}()
	}
}

// track adds c to the connections close ends; it closes c and says false
// once the relay is closing.
func (r *relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		c.Close()
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *relay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	c.Close()
}

// close stops accepting and closes every connection held.
func (r *relay) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	r.ln.Close()
	for c := range r.conns {
		c.Close()
	}
}

// splice copies between a and b both ways until both directions end. An
// end of stream is passed on as a half close, so a peer that waits for
// EOF before it answers still gets its answer back, within halfClose; an
// error ends both directions.
func splice(a, b net.Conn, halfClose time.Duration) {
	done := make(chan struct{}, 2)
	copyHalf := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		if _, err := io.Copy(dst, src); err != nil {
			a.Close()
			b.Close()
			return
		}
		if cw, ok := dst.(interface{ CloseWrite() error }); !ok || cw.CloseWrite() != nil {
			a.Close()
			b.Close()
		}
	}
	go copyHalf(a, b)
	go copyHalf(b, a)
	<-done
	// A peer that never closes its half holds no slot for ever.
	dl := time.Now().Add(halfClose)
	_ = a.SetDeadline(dl)
	_ = b.SetDeadline(dl)
	<-done
	a.Close()
	b.Close()
}
