package cluster

import (
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/protocol"
)

// The server side of the TLS transport: accepting, authorising and
// bounding streams, and serving forwarded requests.
func (t *tlsTransport) acceptLoop() {
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
		// Handshakes are unauthenticated work: bound them, and drop what
		// is over the bound at once rather than queue it.
		select {
		case t.handshakes <- struct{}{}:
		default:
			t.log.Debug("cluster handshake bound reached; connection dropped", "remote", conn.RemoteAddr().String())
			conn.Close()
			continue
		}
		if !t.track(conn) {
			<-t.handshakes
			conn.Close()
			return
		}
		t.wg.Add(1)
		go t.serve(conn)
	}
}

// track records an accepted connection until its stream is admitted, so
// that Close can cut a handshake short. It is false once the transport is
// closed.
func (t *tlsTransport) track(raw net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.closed:
		return false
	default:
	}
	t.pending[raw] = struct{}{}
	return true
}

func (t *tlsTransport) untrack(raw net.Conn) {
	t.mu.Lock()
	delete(t.pending, raw)
	t.mu.Unlock()
}

// serve runs the handshake, reads the stream kind, admits or refuses the
// stream, and hands it on. Everything before admission happens under one
// TransportTimeout deadline, so a silent peer holds nothing for longer.
func (t *tlsTransport) serve(raw net.Conn) {
	defer t.wg.Done()
	remote := raw.RemoteAddr().String()
	refuse := func() {
		t.untrack(raw)
		raw.Close()
	}
	_ = raw.SetDeadline(time.Now().Add(t.timeout))
	conn := tls.Server(raw, t.serverConf)
	kind, err := func() (byte, error) {
		defer func() { <-t.handshakes }()
		if err := conn.Handshake(); err != nil {
			return 0, err
		}
		var b [1]byte
		_, err := io.ReadFull(conn, b[:])
		return b[0], err
	}()
	if err != nil {
		t.log.Debug("cluster handshake failed", "remote", remote, "err", err)
		refuse()
		return
	}
	// The handshake's VerifyConnection has checked there is one Ed25519
	// certificate.
	key, _ := peerKey(conn.ConnectionState())
	id, member := t.members.Member(key)
	sc := &serverConn{Conn: conn, raw: raw, t: t, key: key, id: id, member: member, kind: kind}

	ack := ackAccepted
	switch kind {
	case streamRaft, streamForward:
		if !member {
			ack = ackForbidden
		}
	case streamJoin:
		if t.join == nil {
			ack = ackNoJoin
		}
	default:
		t.log.Warn("cluster connection of unknown kind", "remote", remote, "key", fingerprint(key), "kind", int(kind))
		refuse()
		return
	}
	if ack == ackAccepted && !t.admit(sc) {
		ack = ackBusy
	}
	if ack != ackAccepted {
		switch ack {
		case ackForbidden:
			t.log.Warn("cluster peer refused: identity key not a member", "remote", remote, "key", fingerprint(key), "stream", streamName(kind))
		case ackBusy:
			t.log.Warn("cluster peer refused: connection bound reached", "remote", remote, "key", fingerprint(key), "member", id, "stream", streamName(kind))
		case ackNoJoin:
			t.log.Info("cluster join refused: this node serves no joins", "remote", remote, "key", fingerprint(key))
		}
		_, _ = conn.Write([]byte{ack})
		refuse()
		return
	}
	if _, err := conn.Write([]byte{ackAccepted}); err != nil {
		sc.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	switch kind {
	case streamRaft:
		select {
		case t.raftCh <- sc:
		case <-t.closed:
			sc.Close()
		}
	case streamForward:
		t.serveForward(sc)
	case streamJoin:
		t.serveJoin(sc)
	}
}

// admit counts sc against its bound: MaxConnsPerPeer for a member's key,
// MaxJoinConns for all the keys that are not members together. It is false
// when the bound is reached or the transport is closed.
func (t *tlsTransport) admit(sc *serverConn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.closed:
		return false
	default:
	}
	if sc.member {
		if t.perKey[string(sc.key)] >= t.maxPerPeer {
			return false
		}
		t.perKey[string(sc.key)]++
	} else {
		if t.joins >= t.maxJoins {
			return false
		}
		t.joins++
	}
	delete(t.pending, sc.raw)
	t.conns[sc] = struct{}{}
	return true
}

// release uncounts an admitted stream.
func (t *tlsTransport) release(sc *serverConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.conns[sc]; !ok {
		return
	}
	delete(t.conns, sc)
	if sc.member {
		if t.perKey[string(sc.key)]--; t.perKey[string(sc.key)] <= 0 {
			delete(t.perKey, string(sc.key))
		}
	} else {
		t.joins--
	}
}

// sweep closes the streams of keys that have left the member table.
func (t *tlsTransport) sweep() {
	defer t.wg.Done()
	tick := time.NewTicker(memberRecheck)
	defer tick.Stop()
	for {
		select {
		case <-t.closed:
			return
		case <-tick.C:
		}
		t.mu.Lock()
		var members []*serverConn
		for sc := range t.conns {
			if sc.member {
				members = append(members, sc)
			}
		}
		t.mu.Unlock()
		for _, sc := range members {
			if _, ok := t.members.Member(sc.key); !ok {
				t.log.Warn("cluster peer no longer a member; connection closed", "member", sc.id, "key", fingerprint(sc.key), "stream", streamName(sc.kind))
				sc.kill()
			}
		}
	}
}

// serverConn is an admitted server-side stream. Closing it frees its place
// under the connection bounds; raft closes the ones it is handed.
type serverConn struct {
	net.Conn // the TLS connection
	raw      net.Conn
	t        *tlsTransport
	key      ed25519.PublicKey
	id       string // member id at admission; empty for a key that is not a member
	member   bool
	kind     byte
	once     sync.Once
}

// Close implements net.Conn.
func (c *serverConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.t.release(c) })
	return err
}

// kill closes the stream without TLS's goodbye, which could wait on a peer
// that does not read.
func (c *serverConn) kill() {
	c.raw.Close()
	c.once.Do(func() { c.t.release(c) })
}

// serveForward answers forwarded requests on one stream until it fails,
// idles out, the transport closes, or the peer stops being a member.
func (t *tlsTransport) serveForward(sc *serverConn) {
	defer sc.Close()
	for {
		_ = sc.SetReadDeadline(time.Now().Add(forwardIdleServer))
		b, err := readFrame(sc, t.maxFrame, t.timeout)
		if err != nil {
			switch {
			case errors.Is(err, ErrTooLarge):
				t.log.Warn("cluster forward frame refused", "member", sc.id, "err", err)
			case !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed):
				t.log.Debug("cluster forward connection closed", "member", sc.id, "err", err)
			}
			return
		}
		var resp *protocol.ClusterForwardResponse
		// Each request is checked: a member removed since the stream opened
		// gets nothing more through.
		peer, ok := t.members.Member(sc.key)
		req := &protocol.ClusterForwardRequest{}
		switch {
		case !ok:
			resp = errorResponse(errorf(ErrForbidden, "identity key %s is no longer a member", fingerprint(sc.key)))
		case proto.Unmarshal(b, req) != nil:
			resp = errorResponse(errorf(ErrBadCommand, "forwarded request does not decode"))
		default:
			rpc := newForwardRPC(req)
			rpc.Peer = peer
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
		_ = sc.SetWriteDeadline(time.Now().Add(t.timeout))
		if err := writeFrame(sc, out); err != nil || !ok {
			return
		}
	}
}

// pooledConn is an idle client-side forwarding stream and the key its
