package vsock

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ParentCID is the context id of a Nitro enclave's parent instance.
const ParentCID = 3

// Addr is a vsock address.
type Addr struct {
	CID, Port uint32
}

// Network returns "vsock".
func (a Addr) Network() string { return "vsock" }

// String returns "vsock://CID:PORT", or "vsock://:PORT" for any CID.
func (a Addr) String() string {
	if a.CID == unix.VMADDR_CID_ANY {
		return "vsock://:" + strconv.FormatUint(uint64(a.Port), 10)
	}
	return "vsock://" + strconv.FormatUint(uint64(a.CID), 10) + ":" + strconv.FormatUint(uint64(a.Port), 10)
}

// Dial connects to a stream socket at a. It checks ctx before it dials;
// the connect is bounded by the kernel's timeout.
func Dial(ctx context.Context, a Addr) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vsock: socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrVM{CID: a.CID, Port: a.Port}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vsock: connect %s: %w", a, err)
	}
	// A non-blocking descriptor lets os.File use the runtime poller, so
	// deadlines and Close interrupt reads.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vsock: %w", err)
	}
	return &conn{f: os.NewFile(uintptr(fd), a.String()), remote: a}, nil
}

// conn is a connected vsock stream. It keeps its *os.File in a field, not
// embedded, so that io.Copy uses plain reads and writes rather than the
// file's ReadFrom and WriteTo, which are not for sockets.
type conn struct {
	f      *os.File
	remote Addr
}

var _ net.Conn = (*conn)(nil)

func (c *conn) Read(b []byte) (int, error)         { return c.f.Read(b) }
func (c *conn) Write(b []byte) (int, error)        { return c.f.Write(b) }
func (c *conn) Close() error                       { return c.f.Close() }
func (c *conn) SetDeadline(t time.Time) error      { return c.f.SetDeadline(t) }
func (c *conn) SetReadDeadline(t time.Time) error  { return c.f.SetReadDeadline(t) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

func (c *conn) LocalAddr() net.Addr  { return Addr{CID: unix.VMADDR_CID_ANY} }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

// CloseWrite shuts down the sending side, as net.TCPConn's does: the peer
// reads EOF while this side can still read its answer.
func (c *conn) CloseWrite() error {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Shutdown(int(fd), unix.SHUT_WR) }); err != nil {
		return err
	}
	return serr
}

// Listen listens for stream connections on port, from any CID: inside an
// enclave, from the parent instance. Close interrupts a blocked Accept.
func Listen(port uint32) (net.Listener, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("vsock: socket: %w", err)
	}
	addr := Addr{CID: unix.VMADDR_CID_ANY, Port: port}
	if err := unix.Bind(fd, &unix.SockaddrVM{CID: addr.CID, Port: port}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vsock: listen on port %d: %w", port, err)
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vsock: listen on port %d: %w", port, err)
	}
	return &listener{File: os.NewFile(uintptr(fd), addr.String()), addr: addr}, nil
}

// listener is a listening vsock socket, served by the runtime poller.
type listener struct {
	*os.File
	addr   Addr
	closed atomic.Bool
}

// Close closes the listener; a blocked Accept returns net.ErrClosed.
func (l *listener) Close() error {
	l.closed.Store(true)
	return l.File.Close()
}

var _ net.Listener = (*listener)(nil)

// Accept waits for the next connection; it fails with net.ErrClosed once
// the listener is closed.
func (l *listener) Accept() (net.Conn, error) {
	rc, err := l.SyscallConn()
	if err != nil {
		return nil, l.closedErr(err)
	}
	var (
		nfd  int
		peer unix.Sockaddr
		aerr error
	)
	err = rc.Read(func(fd uintptr) bool {
		nfd, peer, aerr = unix.Accept4(int(fd), unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
		return aerr != unix.EAGAIN
	})
	if err != nil {
		return nil, l.closedErr(err)
	}
	if aerr != nil {
		return nil, fmt.Errorf("vsock: accept on %s: %w", l.addr, aerr)
	}
	remote := Addr{}
	if vm, ok := peer.(*unix.SockaddrVM); ok {
		remote = Addr{CID: vm.CID, Port: vm.Port}
	}
	return &conn{f: os.NewFile(uintptr(nfd), remote.String()), remote: remote}, nil
}

// closedErr turns the poller's error for a closed file into net.ErrClosed,
// which servers take for a clean stop.
func (l *listener) closedErr(err error) error {
	if l.closed.Load() {
		return net.ErrClosed
	}
	return fmt.Errorf("vsock: accept on %s: %w", l.addr, err)
}

// Addr returns the listening address.
func (l *listener) Addr() net.Addr { return l.addr }
