package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/protocol"
)

// One TCP port carries two kinds of stream. The dialer's first byte says
// which: raft's own RPCs, or forwarded proposals (length-prefixed
// protobuf frames, one request and one response at a time).
//
// Neither is authenticated yet: the port must only be reachable from the
// cluster's own nodes until mutual TLS is added.
const (
	streamRaft    byte = 'R'
	streamForward byte = 'F'
)

const (
	// forwardIdleClient is how long an idle forwarding connection stays in
	// the client's pool; the server waits twice as long before closing it,
	// so a pooled connection is rarely stale.
	forwardIdleClient = 30 * time.Second
	forwardIdleServer = 2 * forwardIdleClient
	// acceptBackoff is the pause after a failed Accept.
	acceptBackoff = 10 * time.Millisecond
)

// tcpTransport is the production Transport: raft's NetworkTransport over a
// stream layer that shares its listener with the forwarding server.
type tcpTransport struct {
	*raft.NetworkTransport
	ln        net.Listener
	advertise string
	timeout   time.Duration
	maxFrame  int
	maxPool   int
	log       *slog.Logger

	raftCh     chan net.Conn
	forwardCh  chan *ForwardRPC
	closed     chan struct{}
	streamOnce sync.Once // closes closed and the listener
	closeOnce  sync.Once
	wg         sync.WaitGroup

	mu    sync.Mutex
	pool  map[raft.ServerAddress][]pooledConn
	conns map[net.Conn]struct{} // server-side forwarding connections
}

type pooledConn struct {
	net.Conn
	idleSince time.Time
}

var _ Transport = (*tcpTransport)(nil)

// newTCPTransport listens on cfg.BindAddr.
func newTCPTransport(cfg Config) (*tcpTransport, error) {
	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen on %s: %w", cfg.BindAddr, err)
	}
	adv := cfg.AdvertiseAddr
	if adv == "" {
		adv = ln.Addr().String()
	}
	t := &tcpTransport{
		ln:        ln,
		advertise: adv,
		timeout:   cfg.TransportTimeout,
		maxFrame:  cfg.maxFrame(),
		maxPool:   3,
		log:       cfg.Logger,
		raftCh:    make(chan net.Conn),
		forwardCh: make(chan *ForwardRPC),
		closed:    make(chan struct{}),
		pool:      map[raft.ServerAddress][]pooledConn{},
		conns:     map[net.Conn]struct{}{},
	}
	t.NetworkTransport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  (*muxStream)(t),
		MaxPool: t.maxPool,
		Timeout: cfg.TransportTimeout,
		Logger:  newHCLog(cfg.Logger, "raft-net"),
	})
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

func (t *tcpTransport) acceptLoop() {
	defer t.wg.Done()
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.closed:
				return
			default:
			}
			t.log.Warn("cluster accept failed", "err", err)
			select {
			case <-time.After(acceptBackoff):
			case <-t.closed:
				return
			}
			continue
		}
		t.wg.Add(1)
		go t.classify(conn)
	}
}

// classify reads the stream kind and hands the connection on.
func (t *tcpTransport) classify(conn net.Conn) {
	defer t.wg.Done()
	var kind [1]byte
	_ = conn.SetReadDeadline(time.Now().Add(t.timeout))
	if _, err := io.ReadFull(conn, kind[:]); err != nil {
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	switch kind[0] {
	case streamRaft:
		select {
		case t.raftCh <- conn:
		case <-t.closed:
			conn.Close()
		}
	case streamForward:
		t.serveForward(conn)
	default:
		t.log.Warn("cluster connection of unknown kind", "remote", conn.RemoteAddr().String(), "kind", int(kind[0]))
		conn.Close()
	}
}

// serveForward answers forwarded requests on one connection until it
// fails, idles out, or the transport closes.
func (t *tcpTransport) serveForward(conn net.Conn) {
	t.mu.Lock()
	select {
	case <-t.closed:
		t.mu.Unlock()
		conn.Close()
		return
	default:
	}
	t.conns[conn] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.conns, conn)
		t.mu.Unlock()
		conn.Close()
	}()
	for {
		_ = conn.SetReadDeadline(time.Now().Add(forwardIdleServer))
		b, err := readFrame(conn, t.maxFrame, t.timeout)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.log.Debug("cluster forward connection closed", "remote", conn.RemoteAddr().String(), "err", err)
			}
			return
		}
		req := &protocol.ClusterForwardRequest{}
		var resp *protocol.ClusterForwardResponse
		if err := proto.Unmarshal(b, req); err != nil {
			resp = errorResponse(errorf(ErrBadCommand, "decode forwarded request: %v", err))
		} else {
			rpc := newForwardRPC(req)
			select {
			case t.forwardCh <- rpc:
			case <-t.closed:
				return
			}
			select {
			case resp = <-rpc.respCh:
			case <-t.closed:
				return
			}
		}
		out, err := proto.Marshal(resp)
		if err != nil {
			return
		}
		_ = conn.SetWriteDeadline(time.Now().Add(t.timeout))
		if err := writeFrame(conn, out); err != nil {
			return
		}
	}
}

// Forward implements Transport.
func (t *tcpTransport) Forward(ctx context.Context, target raft.ServerAddress, req *protocol.ClusterForwardRequest) (*protocol.ClusterForwardResponse, error) {
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnsent, errorf(ErrBadCommand, "encode forward: %v", err))
	}
	if len(b) > t.maxFrame {
		return nil, fmt.Errorf("%w: %w", errUnsent, errorf(ErrTooLarge, "forwarded request of %d bytes", len(b)))
	}
	conn, err := t.getConn(ctx, target)
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
		t.putConn(target, conn.Conn)
	}
	return resp, nil
}

// getConn returns an idle pooled connection to target or dials a new one.
func (t *tcpTransport) getConn(ctx context.Context, target raft.ServerAddress) (pooledConn, error) {
	now := time.Now()
	t.mu.Lock()
	select {
	case <-t.closed:
		t.mu.Unlock()
		return pooledConn{}, ErrClosed
	default:
	}
	idle := t.pool[target]
	for len(idle) > 0 {
		c := idle[len(idle)-1]
		idle = idle[:len(idle)-1]
		if now.Sub(c.idleSince) < forwardIdleClient {
			t.pool[target] = idle
			t.mu.Unlock()
			return c, nil
		}
		c.Close()
	}
	t.pool[target] = idle
	t.mu.Unlock()
	d := net.Dialer{Timeout: t.timeout}
	conn, err := d.DialContext(ctx, "tcp", string(target))
	if err != nil {
		return pooledConn{}, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(t.timeout))
	if _, err := conn.Write([]byte{streamForward}); err != nil {
		conn.Close()
		return pooledConn{}, err
	}
	return pooledConn{Conn: conn}, nil
}

func (t *tcpTransport) putConn(target raft.ServerAddress, conn net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.closed:
		conn.Close()
		return
	default:
	}
	if len(t.pool[target]) >= t.maxPool {
		conn.Close()
		return
	}
	t.pool[target] = append(t.pool[target], pooledConn{Conn: conn, idleSince: time.Now()})
}

// ForwardConsumer implements Transport.
func (t *tcpTransport) ForwardConsumer() <-chan *ForwardRPC { return t.forwardCh }

// Close implements Transport. It closes the listener, raft's connections,
// and every forwarding connection, and waits for its goroutines.
func (t *tcpTransport) Close() error {
	var err error
	t.closeOnce.Do(func() {
		err = t.NetworkTransport.Close() // closes the stream layer too
		t.mu.Lock()
		for c := range t.conns {
			c.Close()
		}
		for _, idle := range t.pool {
			for _, c := range idle {
				c.Close()
			}
		}
		t.pool = map[raft.ServerAddress][]pooledConn{}
		t.mu.Unlock()
		t.wg.Wait()
	})
	return err
}

// muxStream is the raft.StreamLayer view of a tcpTransport.
type muxStream tcpTransport

var _ raft.StreamLayer = (*muxStream)(nil)

// Accept implements net.Listener for raft's connections.
func (m *muxStream) Accept() (net.Conn, error) {
	select {
	case c := <-m.raftCh:
		return c, nil
	case <-m.closed:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; it stops the shared listener.
func (m *muxStream) Close() error {
	var err error
	m.streamOnce.Do(func() {
		close(m.closed)
		err = m.ln.Close()
	})
	return err
}

// Addr implements net.Listener; raft advertises this address.
func (m *muxStream) Addr() net.Addr { return advertisedAddr(m.advertise) }

// Dial implements raft.StreamLayer.
func (m *muxStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte{streamRaft}); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// advertisedAddr is a net.Addr that keeps the configured string.
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

// writeFrame writes a 4-byte big-endian length and the payload in one
// write, so a failed write never leaves a complete frame behind.
func writeFrame(w io.Writer, b []byte) error {
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	_, err := w.Write(buf)
	return err
}

// readFrame reads one frame of at most max bytes. Once the header has
// arrived, the body must follow within timeout.
func readFrame(conn net.Conn, max int, timeout time.Duration) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if int64(n) > int64(max) {
		return nil, errorf(ErrTooLarge, "frame of %d bytes", n)
	}
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	b := make([]byte, n)
	if _, err := io.ReadFull(conn, b); err != nil {
		return nil, err
	}
	return b, nil
}
