package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// One TLS 1.3 port carries three kinds of stream. After the handshake the
// dialer's first byte says which: raft's own RPCs, forwarded proposals
// (frames, one request and one response at a time), or the join exchange
// (one request frame, one answer frame).
const (
	streamRaft    byte = 'R'
	streamForward byte = 'F'
	streamJoin    byte = 'J'
)

// The server answers the stream kind with one byte before anything else
// moves, so the dialer learns whether its stream was accepted before it
// sends a frame: a refused stream certainly carried nothing.
const (
	ackAccepted  byte = 'A'
	ackForbidden byte = 'N' // raft or forward from a key that is not a member
	ackBusy      byte = 'B' // a connection bound is reached; try again later
	ackNoJoin    byte = 'U' // this node serves no joins
)

const (
	// forwardIdleClient is how long an idle forwarding connection stays in
	// the client's pool; the server waits twice as long before closing it,
	// so a pooled connection is rarely stale.
	forwardIdleClient = 30 * time.Second
	forwardIdleServer = 2 * forwardIdleClient
	// acceptBackoff is the pause after a failed Accept.
	acceptBackoff = 10 * time.Millisecond
	// memberRecheck is how often the server closes the connections of keys
	// that have left the member table. Forwarded requests are checked one
	// by one anyway; this bounds how long a removed member's raft streams
	// stay open.
	memberRecheck = time.Second
	// maxPool is how many idle connections per target raft and the
	// forwarding client each keep.
	maxPool = 3
)

// tlsTransport is the production Transport: raft's NetworkTransport and
// the forwarding and join servers over one mutual-TLS listener. Peers are
// authorised by their identity key, through Config.Members.
type tlsTransport struct {
	*raft.NetworkTransport
	ln          net.Listener
	net         Network // dials peers
	advertise   string
	timeout     time.Duration
	maxFrame    int
	maxCommand  int
	joinTimeout time.Duration
	maxPerPeer  int
	maxJoins    int
	maxForwards int
	log         *slog.Logger

	cert       tls.Certificate
	serverConf *tls.Config
	members    PeerAuthorizer
	join       JoinServer
	// raft, once New has started it, says which member a dialled address
	// belongs to.
	raft atomic.Pointer[raft.Raft]

	handshakes chan struct{} // one token per handshake in progress
	raftCh     chan net.Conn
	forwardCh  chan *ForwardRPC
	closed     chan struct{}
	// ctx ends when Close starts; it bounds the JoinServer's work.
	ctx        context.Context
	cancel     context.CancelFunc
	streamOnce sync.Once // closes closed and the listener
	closeOnce  sync.Once
	wg         sync.WaitGroup

	mu      sync.Mutex
	pool    map[raft.ServerAddress][]pooledConn
	slots   map[raft.ServerAddress]chan struct{} // forwards in flight per target
	pending map[net.Conn]struct{}                // accepted, stream not yet admitted
	conns   map[*serverConn]struct{}             // admitted server-side streams
	perKey  map[string]int                       // admitted streams of each member key
	joins   int                                  // admitted streams of keys that are not members
	refused map[raft.ServerAddress]bool          // targets whose last TCP connect was refused
}

var (
	_ Transport    = (*tlsTransport)(nil)
	_ goneReporter = (*tlsTransport)(nil)
)

// errBusy is a stream refused because this node holds as many streams at
// the server as the server allows; a later try may succeed.
var errBusy = errors.New("cluster: connection bound reached")

// newTLSTransport listens on cfg.BindAddr with a certificate made from
// cfg.Identity.
func newTLSTransport(cfg Config) (*tlsTransport, error) {
	cert, err := newCertificate(cfg.Identity)
	if err != nil {
		return nil, err
	}
	nw := orTCP(cfg.Network)
	ln, err := nw.Listen(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen on %s: %w", cfg.BindAddr, err)
	}
	adv := cfg.AdvertiseAddr
	if adv == "" {
		adv = ln.Addr().String()
	}
	t := &tlsTransport{
		ln:          ln,
		net:         nw,
		advertise:   adv,
		timeout:     cfg.TransportTimeout,
		maxFrame:    cfg.maxFrame(),
		maxCommand:  cfg.MaxCommandBytes,
		joinTimeout: cfg.JoinTimeout,
		maxPerPeer:  cfg.MaxConnsPerPeer,
		maxJoins:    cfg.MaxJoinConns,
		maxForwards: cfg.maxForwards(),
		log:         cfg.Logger,
		cert:        cert,
		serverConf:  serverTLS(cert),
		members:     cfg.Members,
		join:        cfg.Join,
		handshakes:  make(chan struct{}, cfg.MaxHandshakes),
		raftCh:      make(chan net.Conn),
		forwardCh:   make(chan *ForwardRPC),
		closed:      make(chan struct{}),
		pool:        map[raft.ServerAddress][]pooledConn{},
		slots:       map[raft.ServerAddress]chan struct{}{},
		pending:     map[net.Conn]struct{}{},
		conns:       map[*serverConn]struct{}{},
		perKey:      map[string]int{},
		refused:     map[raft.ServerAddress]bool{},
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.NetworkTransport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  (*muxStream)(t),
		MaxPool: maxPool,
		Timeout: cfg.TransportTimeout,
		Logger:  newHCLog(cfg.Logger, "raft-net"),
	})
	t.wg.Add(2)
	go t.acceptLoop()
	go t.sweep()
	return t, nil
}

// bindRaft lets the dialer check that a server is the member raft expects
// at its address.
func (t *tlsTransport) bindRaft(r *raft.Raft) { t.raft.Store(r) }

// ForwardConsumer implements Transport.
func (t *tlsTransport) ForwardConsumer() <-chan *ForwardRPC { return t.forwardCh }

// Close implements Transport. It closes the listener, every connection in
// either direction, and waits for its goroutines.
func (t *tlsTransport) Close() error {
	var err error
	t.closeOnce.Do(func() {
		err = t.NetworkTransport.Close() // closes the stream layer too
		t.cancel()
		t.mu.Lock()
		for c := range t.pending {
			c.Close()
		}
		conns := make([]*serverConn, 0, len(t.conns))
		for c := range t.conns {
			conns = append(conns, c)
		}
		for _, idle := range t.pool {
			for _, c := range idle {
				c.Close()
			}
		}
		t.pool = map[raft.ServerAddress][]pooledConn{}
		t.mu.Unlock()
		for _, c := range conns {
			c.kill()
		}
		t.wg.Wait()
	})
	return err
}

// muxStream is the raft.StreamLayer view of a tlsTransport.
type muxStream tlsTransport

var _ raft.StreamLayer = (*muxStream)(nil)

// Accept implements net.Listener for raft's streams.
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
	conn, _, err := (*tlsTransport)(m).dial(context.Background(), address, streamRaft, timeout)
	return conn, err
}

// advertisedAddr is a net.Addr that keeps the configured string.
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }
