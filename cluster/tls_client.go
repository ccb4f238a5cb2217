package cluster

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/protocol"
)

// The dialing side of the TLS transport: opening streams to servers it
// authorises, and forwarding proposals over a pool of them.
type pooledConn struct {
	*tls.Conn
	key       ed25519.PublicKey
	idleSince time.Time
	// watch, while the stream idles in the pool, reads from it: it ends
	// with closed true when the peer closed the stream (it restarted, or
	// idled it out), and at once when reclaim stops it.
	watch *idleWatch
}

// idleWatch watches an idle stream for its peer closing it.
type idleWatch struct {
	done   chan struct{}
	closed bool // set before done closes
}

// watchIdle starts watching an idle stream. A forwarding stream carries
// nothing between requests, so a read can only end in the peer's close or
// in reclaim's deadline.
func watchIdle(c *tls.Conn) *idleWatch {
	w := &idleWatch{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var b [1]byte
		_, err := c.Read(b[:])
		var ne net.Error
		w.closed = !(errors.As(err, &ne) && ne.Timeout())
	}()
	return w
}

// reclaim stops the watch and reports whether the stream is still open. A
// read deadline in the past ends the watch's read; a read timeout leaves a
// TLS connection usable.
func (c pooledConn) reclaim() bool {
	_ = c.SetReadDeadline(time.Unix(1, 0))
	<-c.watch.done
	_ = c.SetReadDeadline(time.Time{})
	return !c.watch.closed
}

// Forward implements Transport. The server must be a member (the member
// raft has at target, when raft knows target), and at most
// MaxConnsPerPeer/2 forwards run at once per target, so that one node's
// forwarding stays inside the leader's bound for it with room for raft.
func (t *tlsTransport) Forward(ctx context.Context, target raft.ServerAddress, req *protocol.ClusterForwardRequest) (*protocol.ClusterForwardResponse, error) {
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnsent, errorf(ErrBadCommand, "encode forward: %v", err))
	}
	if len(b) > t.maxFrame {
		return nil, fmt.Errorf("%w: %w", errUnsent, errorf(ErrTooLarge, "forwarded request of %d bytes", len(b)))
	}
	done, err := t.forwardSlot(ctx, target)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnsent, err)
	}
	defer done()
	conn, err := t.getConn(ctx, target)
	if errors.Is(err, ErrForbidden) {
		// Nothing was sent, but trying again cannot help: the caller hears
		// why at once.
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnsent, err)
	}
	ok := false
	defer func() {
		if !ok {
			conn.Close()
		}
	}()
	// Cancelling ctx unblocks the I/O below by expiring its deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	deadline := time.Now().Add(t.timeout + time.Duration(req.GetTimeoutNanos()))
	if d, has := ctx.Deadline(); has && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	if err := writeFrame(conn, b); err != nil {
		// A frame cut short is never processed.
		return nil, fmt.Errorf("%w: %v", errUnsent, err)
	}
	rb, err := readFrame(conn, t.maxFrame, t.timeout)
	if err != nil {
		return nil, errorf(ErrUncertain, "reading the leader's answer: %v", err)
	}
	resp := &protocol.ClusterForwardResponse{}
	if err := proto.Unmarshal(rb, resp); err != nil {
		return nil, errorf(ErrUncertain, "decoding the leader's answer: %v", err)
	}
	if stop() {
		_ = conn.SetDeadline(time.Time{})
		ok = true
		t.putConn(target, conn)
	}
	return resp, nil
}

// forwardSlot waits for one of target's forwarding slots and returns its
// release.
func (t *tlsTransport) forwardSlot(ctx context.Context, target raft.ServerAddress) (func(), error) {
	t.mu.Lock()
	s, ok := t.slots[target]
	if !ok {
		s = make(chan struct{}, t.maxForwards)
		t.slots[target] = s
	}
	t.mu.Unlock()
	select {
	case s <- struct{}{}:
		return func() { <-s }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.closed:
		return nil, ErrClosed
	}
}

// getConn returns an idle pooled stream to target whose server is still
// authorised, or dials a new one.
func (t *tlsTransport) getConn(ctx context.Context, target raft.ServerAddress) (pooledConn, error) {
	now := time.Now()
	check := t.checkServer(target)
	for {
		t.mu.Lock()
		select {
		case <-t.closed:
			t.mu.Unlock()
			return pooledConn{}, ErrClosed
		default:
		}
		idle := t.pool[target]
		if len(idle) == 0 {
			t.mu.Unlock()
			break
		}
		c := idle[len(idle)-1]
		t.pool[target] = idle[:len(idle)-1]
		t.mu.Unlock()
		open := c.reclaim()
		if open && now.Sub(c.idleSince) < forwardIdleClient && check(c.key) == nil {
			return c, nil
		}
		c.Close()
	}
	conn, key, err := t.dial(ctx, target, streamForward, t.timeout)
	if err != nil {
		return pooledConn{}, err
	}
	return pooledConn{Conn: conn, key: key}, nil
}

func (t *tlsTransport) putConn(target raft.ServerAddress, c pooledConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.closed:
		c.Close()
		return
	default:
	}
	if len(t.pool[target]) >= maxPool {
		c.Close()
		return
	}
	c.idleSince = time.Now()
	c.watch = watchIdle(c.Conn)
	t.pool[target] = append(t.pool[target], c)
}

// dial opens a raft or forwarding stream to target, whose server must pass
// checkServer.
func (t *tlsTransport) dial(ctx context.Context, target raft.ServerAddress, kind byte, timeout time.Duration) (*tls.Conn, ed25519.PublicKey, error) {
	conn, err := dialStream(ctx, t.net, string(target), clientTLS(t.cert, t.checkServer(target)), kind, timeout)
	t.noteDial(target, err)
	if err != nil {
		return nil, nil, err
	}
	key, _ := peerKey(conn.ConnectionState())
	return conn, key, nil
}

// noteDial records whether target refused the connection. Only a refusal
// proves the node is not running; any other outcome, a timeout included,
// says nothing either way and clears the mark.
func (t *tlsTransport) noteDial(target raft.ServerAddress, err error) {
	refused := errors.Is(err, syscall.ECONNREFUSED)
	t.mu.Lock()
	defer t.mu.Unlock()
	if refused {
		t.refused[target] = true
	} else {
		delete(t.refused, target)
	}
}

// Gone implements goneReporter: the last connection to addr was refused.
func (t *tlsTransport) Gone(addr raft.ServerAddress) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.refused[addr]
}

// Probe implements goneReporter: it opens a TCP connection to addr and
// closes it at once (the server drops it before any TLS, quietly).
func (t *tlsTransport) Probe(ctx context.Context, addr raft.ServerAddress) bool {
	conn, err := t.net.DialContext(ctx, "tcp", string(addr))
	if err == nil {
		conn.Close()
	}
	t.noteDial(addr, err)
	return errors.Is(err, syscall.ECONNREFUSED)
}

// checkServer returns the test a server at target must pass: its key is a
// member's, and that member is the one raft has at target when raft knows
// the address.
func (t *tlsTransport) checkServer(target raft.ServerAddress) func(ed25519.PublicKey) error {
	return func(key ed25519.PublicKey) error {
		id, ok := t.members.Member(key)
		if !ok {
			return errorf(ErrForbidden, "server at %s has identity key %s, which is not a member", target, fingerprint(key))
		}
		if want, known := t.memberAt(target); known && want != id {
			return errorf(ErrForbidden, "server at %s is member %q, but raft has %q at that address", target, id, want)
		}
		return nil
	}
}

// memberAt returns the id of the server at addr in raft's latest
// configuration.
func (t *tlsTransport) memberAt(addr raft.ServerAddress) (string, bool) {
	r := t.raft.Load()
	if r == nil {
		return "", false
	}
	for _, s := range r.GetConfiguration().Configuration().Servers {
		if s.Address == addr {
			return string(s.ID), true
		}
	}
	return "", false
}

// dialStream opens a stream of kind to addr over nw: the connection, the TLS 1.3 handshake
// (conf decides on the server's key), the kind byte and the server's
// answer. Each step is bounded by timeout (when positive) and ctx. On any
// error nothing was sent on the stream.
func dialStream(ctx context.Context, nw Network, addr string, conf *tls.Config, kind byte, timeout time.Duration) (*tls.Conn, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	raw, err := nw.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: %s stream to %s: %w", streamName(kind), addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	ok := false
	defer func() {
		if !ok {
			stop()
			raw.Close()
		}
	}()
	conn := tls.Client(raw, conf)
	if err := conn.HandshakeContext(ctx); err != nil {
		if errors.Is(err, ErrForbidden) {
			return nil, err // our own check of the server's key: it says enough
		}
		return nil, fmt.Errorf("cluster: %s stream to %s: TLS handshake: %w", streamName(kind), addr, err)
	}
	if _, err := conn.Write([]byte{kind}); err != nil {
		return nil, fmt.Errorf("cluster: %s stream to %s: %w", streamName(kind), addr, err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil {
		return nil, fmt.Errorf("cluster: %s did not accept the %s stream: %w", addr, streamName(kind), err)
	}
	if !stop() {
		return nil, ctx.Err()
	}
	switch ack[0] {
	case ackAccepted:
	case ackForbidden:
		return nil, errorf(ErrForbidden, "%s refused the %s stream: this node's identity key is not a member there", addr, streamName(kind))
	case ackBusy:
		return nil, fmt.Errorf("%w: %s refused the %s stream: this node holds as many streams there as it allows", errBusy, addr, streamName(kind))
	case ackNoJoin:
		return nil, errorf(ErrJoinRefused, "%s serves no joins", addr)
	default:
		return nil, fmt.Errorf("cluster: %s answered the %s stream with %#x, not a Coterie node", addr, streamName(kind), ack[0])
	}
	_ = raw.SetDeadline(time.Time{})
	ok = true
	return conn, nil
}

func streamName(kind byte) string {
	switch kind {
	case streamRaft:
		return "raft"
	case streamForward:
		return "forward"
	case streamJoin:
		return "join"
	}
	return fmt.Sprintf("unknown(%#x)", kind)
}
